package bench

// raiseNoFile has nothing to raise on Windows, which has no per-process
// descriptor limit of this kind; 0 means "not limited here".
func raiseNoFile() (uint64, error) { return 0, nil }

// selfCPU is not measured on Windows: the client CPU column of a report
// stays 0 there.
func selfCPU() cpuTimes { return cpuTimes{} }
