package pluginhost

import "syscall"

// pluginProcAttr: Setpgid, so a signal to the sidecar's process group
// (Ctrl-C, timeout(1)) does not reach plugins directly (the sidecar drains
// and stops them itself), and Pdeathsig, so they die with the sidecar even
// when it is SIGKILLed.
func pluginProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// killPID sends SIGKILL to pid; an already gone process is not an error.
func killPID(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }
