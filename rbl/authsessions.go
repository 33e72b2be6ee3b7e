package rbl

// Sessions says which SMTP sessions a list entry counts for, by whether
// the client has authenticated (SMTP AUTH). Lists like Spamhaus AuthBL
// name the addresses of bots that log in with stolen passwords: they mean
// something only for clients that authenticated, and the other lists
// mostly nothing for them.
type Sessions uint8

const (
	// SessionsUnauthenticated (the default) counts the entry for clients
	// that have not authenticated.
	SessionsUnauthenticated Sessions = iota
	// SessionsAuthenticated counts the entry only for clients that have
	// authenticated; it is asked only once they have.
	SessionsAuthenticated
	// SessionsAll counts the entry for every client.
	SessionsAll
)

var sessionsNames = [...]string{
	SessionsUnauthenticated: "unauthenticated",
	SessionsAuthenticated:   "authenticated",
	SessionsAll:             "all",
}

// String returns "unauthenticated", "authenticated" or "all", as written
// in the config file.
func (s Sessions) String() string {
	if int(s) < len(sessionsNames) {
		return sessionsNames[s]
	}
	return "unknown"
}

// counts reports whether an entry for these sessions counts for a client
// whose authentication is as given.
func (s Sessions) counts(authenticated bool) bool {
	switch s {
	case SessionsAll:
		return true
	case SessionsAuthenticated:
		return authenticated
	}
	return !authenticated
}
