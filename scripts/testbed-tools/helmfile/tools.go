//go:build tools

// Package tools records the commands scripts/testbed builds from this module.
package tools

import (
	_ "github.com/helmfile/helmfile"
)
