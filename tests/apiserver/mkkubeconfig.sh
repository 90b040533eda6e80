#!/usr/bin/env bash
# mkkubeconfig.sh FILE PORT: a kubeconfig for the stand-in API server on
# https://127.0.0.1:PORT, naming the CA (pki/ca.crt, from mkcerts.sh) and
# the token file (token) relative to FILE's folder, as ferryd resolves them.
set -eu

file=${1:?usage: mkkubeconfig.sh FILE PORT}
port=${2:?usage: mkkubeconfig.sh FILE PORT}
cat >"$file" <<YAML
apiVersion: v1
kind: Config
current-context: standin
clusters:
- name: standin
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: pki/ca.crt
users:
- name: ferry
  user:
    tokenFile: token
contexts:
- name: standin
  context: {cluster: standin, user: ferry}
YAML
