package milter

import "strings"

// forgeries finds the incoming copies of the headers rblmilter writes: any
// header of the results header's name, and any Authentication-Results
// that carries rblmilter's authserv-id. A sender could otherwise pre-stamp
// its message "clean" for the content filter that trusts them. As OpenDKIM
// and OpenDMARC do, they are deleted at end of message before rblmilter
// adds its own.
//
// The milter protocol deletes a header by its name and its position among
// the headers of that name, counted from 1 (Postfix and Sendmail both
// count per name, case-insensitively), so every header of the two names
// is counted as it arrives.
type forgeries struct {
	header     string
	authservID string
	// nHeader and nAuthRes count the headers of each name seen so far.
	nHeader, nAuthRes int
	// forged are the positions to delete, in arrival order.
	forged []headerRef
}

// headerRef names one header of a message: its name and its position
// among the headers of that name, from 1.
type headerRef struct {
	name  string
	index int
}

// newForgeries watches for copies of header and of Authentication-Results
// with authservID; an empty authservID matches none.
func newForgeries(header, authservID string) forgeries {
	return forgeries{header: header, authservID: authservID}
}

// see counts one incoming header.
func (f *forgeries) see(name, value string) {
	switch {
	case strings.EqualFold(name, f.header):
		f.nHeader++
		f.forged = append(f.forged, headerRef{f.header, f.nHeader})
	case strings.EqualFold(name, authResultsHeader):
		f.nAuthRes++
		if f.authservID != "" && strings.EqualFold(authservIDOf(value), f.authservID) {
			f.forged = append(f.forged, headerRef{authResultsHeader, f.nAuthRes})
		}
	}
}

// deletions returns the forged headers in the order to delete them: last
// first, so that no deletion moves the position of one still to come.
func (f *forgeries) deletions() []headerRef {
	out := make([]headerRef, len(f.forged))
	for i, h := range f.forged {
		out[len(out)-1-i] = h
	}
	return out
}

// reset forgets the message's headers; the next message starts counting
// anew.
func (f *forgeries) reset() {
	f.nHeader, f.nAuthRes = 0, 0
	f.forged = f.forged[:0]
}
