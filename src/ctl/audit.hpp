// audit.hpp: unitctl's audit trail: who changed the primary, how, and the
// generation it reached.
//
// run_audited() runs a command and, when it succeeded and changed the
// primary (its meta.generation moved, or the database was created) or says
// it changed something (Invocation::changed: import, sync, move, publish), writes
// one line to the audit log:
//   audit: user root (sudo: alice): unitctl --db P mailbox add a@example.com unit1: generation 41 -> 42
//   audit: user root: unitctl --db P sync users.csv: added 12 changed 3 removed 1 moves begun 2: generation 41 -> 59
// and one more line for each further line of Invocation::changed (the
// objects of sync -v). A failed command wrote nothing (every write is one
// transaction) and is not audited; neither is a command that read only, nor
// one outside the primary (Command::outside_primary), whose run reads no database.
// The log is audit_log (settings.hpp): syslog, facility mail (where
// Postfix logs, so one log holds the mail and the directory changes that
// explain it), priority info, ident unitctl; or stderr; or none. Every
// value (arguments, addresses) goes through common::printable(); nothing
// secret is logged (LDAP passwords come from a file, never from the
// command line). Logging never fails the command.
#pragma once

#include <string>
#include <vector>

#include "ctl/command.hpp"

namespace unit::ctl {

// "root", or "root (sudo: alice)" when run through sudo(8).
std::string who_runs_this();

// Runs command.run(inv), then audits it as above. `argv` is the whole
// command line, for the audit line. Exceptions from the command pass
// through, unaudited.
void run_audited(const Command& command, Invocation& inv, const std::vector<std::string>& argv);

}  // namespace unit::ctl
