package emitter

// QueuedCommands reports how many commands wait on emitter id (tests wait
// for callers to queue up before releasing a held batch).
func (m *Manager) QueuedCommands(id string) int {
	inst, err := m.lookup(id)
	if err != nil {
		return -1
	}
	inst.cmds.mu.Lock()
	defer inst.cmds.mu.Unlock()
	return len(inst.cmds.waiting)
}
