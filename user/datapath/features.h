/* Strict replacement: ferry either has every kernel feature it relies on
 * or refuses to start, naming what is missing. */
#ifndef FERRY_FEATURES_H
#define FERRY_FEATURES_H

/* Returns 0, or -1 after logging each missing feature. */
int features_check(void);

#endif
