//go:build tools

// Package peers pins kube-apiserver's whole dependency graph in this module's go.mod and go.sum, so that
// scripts/install-peers.sh can `go build k8s.io/kubernetes/cmd/kube-apiserver` from it.
package peers

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
