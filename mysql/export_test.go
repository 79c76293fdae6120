package mysql

// ReadsWire reports whether s reads results from the socket itself.
func ReadsWire(s *Source) bool { return s.wire }

// UseDriverRows makes s read every result through the driver's rows, as
// it does under TLS or compression.
func UseDriverRows(s *Source) { s.wire = false }
