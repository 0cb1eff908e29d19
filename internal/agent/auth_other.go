//go:build !unix

package agent

import "os/exec"

// killGroupOnCancel: the command alone is killed (exec's default).
func killGroupOnCancel(*exec.Cmd) {}
