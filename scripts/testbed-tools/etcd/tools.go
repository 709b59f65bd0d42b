//go:build tools

// Package tools records the commands scripts/testbed builds from this module.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
