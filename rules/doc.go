// Package rules is rasentry's policy: the model of a policy file, its
// loading and validation with FILE:LINE:COL problems, its compilation into
// plain matcher functions, evaluation of labelled flows and Remote
// Assistance sessions to a Decision, suppression windows, and the built-in
// presets. It decides; it never writes records or touches the network.
//
// # The policy file
//
// A policy mirrors what an administrator already sets for Remote Assistance
// on hosts — Group Policy (Administrative Templates\System\Remote
// Assistance) and the firewall's per-profile exceptions (protocols.md §6.3)
// — and enforces it at the network edge, where one unmanaged host cannot
// opt out. rules/presets/example.yaml documents every key with its default;
// in short:
//
//	version: 1                      # default 1
//	default: log                    # no rule matched; default log (severity 3)
//	networks: {NAME: [CIDR, ...]}   # in none of them: the Internet
//	groups:   {NAME: [ADDR|CIDR]}   # host sets, e.g. the offer helpers
//	remote_assistance:              # every setting defaults to not configured (no rule)
//	  solicited: enabled|disabled|{state, control, max_ticket_time, action, severity}
//	  offer: enabled|disabled|{state, control, helpers, networks, action, severity}
//	  encrypted_invitations_only: true|{enabled, action, severity}
//	  teredo|upnp|pnrp|dns: ACTION|{NETWORK|internet|default: ACTION|{action, severity}}
//	rules: [{id, name, sid, rev, severity, action, match, suppress}]
//
// Direction follows from the networks: internal (client and server inside),
// outbound (client inside, server on the Internet), inbound (the reverse),
// external (both on the Internet, e.g. a Teredo inner flow).
//
// # Evaluation
//
// The explicit rules come first, in file order; then the rules compiled from
// the settings, in the order offer, encrypted_invitations_only, solicited,
// teredo, upnp, pnrp, dns; the first rule that matches decides, else the
// default. What each setting compiles into:
//
//   - offer enabled: setting:offer:helpers allows ra-dcom-offer and
//     rdp-ra-candidate flows (outside a session or in an offer session) and
//     offer sessions from a host in the helpers groups to a host in the
//     offer networks (default: the network named "domain", else all);
//     setting:offer then applies the setting's action (block) to every
//     other ra-dcom-offer flow and offer session. offer disabled:
//     setting:offer alone.
//   - encrypted_invitations_only: setting:encrypted-invitations-only
//     applies its action (block) to ra-invitation-file flows whose ticket is
//     the plain-text XP RCTICKET (Subject.InvitationPlain).
//   - solicited disabled: setting:solicited applies its action (block) to
//     ra-invitation-file, pnrp-ra-easyconnect and rdp-ra-candidate flows
//     outside a session, and to sessions of mode invitation, easy-connect,
//     upnp and unknown. Enabled and not-configured compile into no rule.
//   - teredo (teredo, teredo-qualification), upnp (upnp-portmap-add), pnrp
//     (pnrp, pnrp-ra-easyconnect), dns (dns-teredo-server, dns-pnrp-seed):
//     one rule per network entry, setting:KEY:NETWORK, matching the local
//     host (the client when it is inside a named network, else the server);
//     "internet" when neither endpoint is inside; "default" (setting:KEY)
//     for every host, always last.
//
// Settings that cannot be enforced on the wire — view-only control, the
// maximum ticket time — are accepted, reported as notes by check and
// explain, and listed in Decision.Unenforceable for the subjects they
// concern.
//
// # Problems
//
// Load reports every problem it finds as "FILE:LINE:COL: what is wrong":
// YAML syntax, unknown keys anywhere (with a suggestion), wrong shapes and
// values, bad CIDRs, unknown labels, modes, directions, networks and
// groups, duplicate keys, ids and signature ids, and rules that can never
// match. Once the file reads cleanly, two whole-policy checks run: derived
// signature ids that collide, and shadowing — a rule (explicit or compiled
// from a setting) is a problem when an earlier rule matches everything it
// matches. Shadowing is compared field by field, with network and group
// containment, so it may miss a shadow cast by several rules together but
// never reports a false one. Suppression does not let a match fall through,
// so it does not prevent shadowing.
//
// # Signature ids
//
// A rule's sid is its explicit sid, or SignatureIDBase (9_100_000) +
// FNV-1a-32(rule id) mod SignatureIDRange (100_000): stable per id across
// edits and machines. Setting rules ("setting:offer", ...) and the default
// ("default") are derived the same way.
//
// # Hot path
//
// Compiled.Evaluate computes a subject's facts once (network and group
// membership as bit masks, direction, mode bit) and runs the rules'
// matcher closures over them; it allocates nothing. The Engine holds the
// Compiled policy behind an atomic pointer, applies suppression windows in
// packet time (a bounded table), counts decisions, and swaps policies on
// Reload, keeping the running one when the new one fails.
package rules
