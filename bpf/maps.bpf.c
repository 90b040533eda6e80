// SPDX-License-Identifier: GPL-2.0
/* The maps alone, without a program. ferryd creates (or adopts) them from
 * this object first and fills them while the kernel verifies the socket
 * LB's programs against them: with no program here there is no CO-RE to
 * relocate, so making the maps does not wait for a parse of the kernel's
 * BTF (10-15 ms; the programs' object parses it for itself).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/maps.h"

char LICENSE[] SEC("license") = "GPL";
