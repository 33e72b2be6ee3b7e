package milter

import (
	gomilter "github.com/emersion/go-milter"

	"github.com/rblmilter/rblmilter/rbl"
)

// smtpStage is a point of the SMTP dialogue where the MTA calls the
// milter.
type smtpStage uint8

const (
	atConnect smtpStage = iota
	atHelo
	atMail
	atRcpt
)

var stageNames = [...]string{atConnect: "connect", atHelo: "helo", atMail: "mail", atRcpt: "rcpt"}

// String returns the stage's name in the decision log's "at" field.
func (st smtpStage) String() string { return stageNames[st] }

// plan is what one configuration does at each SMTP stage, worked out once
// from the policy and what the lists are asked about: the stages the MTA
// must call the milter at, and at each stage the checks whose names are
// still to come.
type plan struct {
	checks rbl.CheckSet
	// helo, mail and rcpt: the MTA must send these stages.
	helo, mail, rcpt bool
	// clientNames: ask the MTA for the client name macros at connect.
	clientNames bool
	// headers: some message may get the results header, so the MTA must
	// send the headers (to find forged copies) and allow header changes.
	headers bool
}

func newPlan(p *Policy, checks rbl.CheckSet, tagLevel int) plan {
	pl := plan{checks: checks}
	pl.headers = p.ResultsHeader || p.Action == ActionTag || tagLevel > 0
	pl.helo = checks.Has(rbl.CheckHelo)
	// HELO lists' answers are awaited at MAIL, where the sender lists are
	// asked; stage = "rcpt" needs {auth_authen} from MAIL and decides at
	// RCPT.
	pl.mail = pl.helo || checks.Has(rbl.CheckSender) || p.Stage == StageRcpt
	pl.rcpt = p.Stage == StageRcpt
	pl.clientNames = checks.Has(rbl.CheckClient) || checks.Has(rbl.CheckReverseClient)
	return pl
}

// open returns the checks whose names come after stage st: lists asked
// about them can still change the decision.
func (pl *plan) open(st smtpStage) rbl.CheckSet {
	var later rbl.CheckSet
	switch st {
	case atConnect:
		later = rbl.Checks(rbl.CheckHelo, rbl.CheckSender)
	case atHelo:
		later = rbl.Checks(rbl.CheckSender)
	}
	return later & pl.checks
}

// lasting returns the checks that may still change the decision for the
// rest of the connection after stage st: those still to come, and the
// sender, which every transaction brings anew. ACCEPT ends the milter's
// part, so it is answered only when none of them can change the decision.
// (A client that sends EHLO again after MAIL is not followed: its HELO
// name is its own claim either way.)
func (pl *plan) lasting(st smtpStage) rbl.CheckSet {
	return pl.open(st) | pl.checks&rbl.Checks(rbl.CheckSender)
}

// protocol asks the MTA to skip every stage the plan does not use, so that
// it spends nothing on the milter it need not. go-milter always replies,
// so no "no reply" flags are set.
func (pl *plan) protocol() gomilter.OptProtocol {
	p := gomilter.OptNoBody | gomilter.OptNoEOH | gomilter.OptNoUnknown | gomilter.OptNoData
	if !pl.headers {
		p |= gomilter.OptNoHeaders
	}
	if !pl.helo {
		p |= gomilter.OptNoHelo
	}
	if !pl.mail {
		p |= gomilter.OptNoMailFrom
	}
	if !pl.rcpt {
		p |= gomilter.OptNoRcptTo
	}
	return p
}

// macros are the macros the plan reads, by stage (SMFIF_SETSYMLIST).
func (pl *plan) macros() map[gomilter.Stage][]string {
	// {client_addr} is the fallback for Sendmail's "IPv6:" form, which
	// go-milter cannot parse; {auth_authen} tells authenticated senders
	// apart at MAIL.
	connect := []string{"{client_addr}", "j", "{daemon_name}"}
	if pl.clientNames {
		// The client's name, its PTR name, and the MTA's verdict on the
		// name's forward lookup (OK: verified).
		connect = append(connect, "{client_name}", "{client_ptr}", "{client_resolve}")
	}
	return map[gomilter.Stage][]string{
		gomilter.StageConnect:  connect,
		gomilter.StageMailFrom: {"{auth_authen}", "i"},
	}
}
