// filter.hpp: the libmilter glue of unitmilter: the xxfi_* callbacks and
// the connection pool behind them. The decision is message_plan.hpp's (over
// route_header.hpp's headers and loop guard, and libunit's recipients);
// this file only collects the input, calls it, logs and counts, and applies
// the result.
//
// Protocol. The filter negotiates only what it needs: connect (the client
// address), RCPT (the accepted recipients), the headers and end of message;
// HELO, MAIL, DATA, end of header, body and unknown commands are switched off
// (SMFIP_NO*) and connect, RCPT and headers get no reply (SMFIP_NR_*) when
// the MTA offers that. smfi_setsymlist asks for {client_addr} at connect
// (a fallback when the connect callback has no address) and for the queue
// id `i` at end of message. Actions: add and change headers, and, with
// expand_aliases, add and delete recipients.
//
// Per connection, a Session lives in smfi_setpriv (created at negotiation,
// freed in xxfi_close): Debian's libmilter runs one connection's callbacks on
// any thread of its worker pool, one at a time, so nothing per connection may
// live in thread-locals. The session keeps the configuration snapshot it
// started with, so a reload never changes a message half-way. Per message it
// keeps a HeaderScan (at most max_stripped_headers names) and the raw
// recipients (at most max_recipients; memory is bounded whatever the client
// sends), and forgets both at end of message and on abort.
//
// Connection pool (the choice): SQLite connections (a Directory each) are
// not tied to libmilter's threads, which libmilter creates and retires as it
// likes and which callbacks hop between. Instead each configuration snapshot
// owns a small pool: a callback that resolves checks a Directory out (under a
// mutex), uses it alone, and returns it; a new one is opened only when every
// pooled one is in use, so the pool holds as many connections as callbacks
// ever resolved at once (at most libmilter's worker count). A reload
// (SIGUSR1) installs a new snapshot with a new pool; the old pool closes when
// the last session using it ends. Only end of message resolves, so one
// checkout per message.
//
// End of message: the plan (message_plan.hpp says its refusals and their
// order) is computed in one pool checkout, its notes logged with the queue
// id, then applied: the header edits, at most max_stripped_headers + 1
// (smfi_chgheader by index, highest first, then smfi_chgheader or
// smfi_addheader for the one route) and, with expand_aliases, the envelope
// edits (smfi_delrcpt/smfi_addrcpt, each logged with the queue id). A failed
// libmilter call tempfails the message. No header written here contains a
// recipient address.
//
// Nothing throws out of a callback: an exception in a callback that gets no
// reply marks the message, which is tempfailed (451 4.3.0) at its end.
// Counts into filter_stats() (milter/stats.hpp, served by --metrics).
// Logs (Postfix style, "QUEUEID: ..."): loops and refusals (warning),
// directory problems (warning/error), forged headers removed and envelope
// changes (info), role unit recipients that leave this unit (info), every
// decision (debug).
#pragma once

#include <libmilter/mfapi.h>

#include <chrono>
#include <cstddef>
#include <memory>

#include "milter/settings.hpp"
#include "milter/stats.hpp"

namespace unit::milter {

// Installs a configuration snapshot (at start-up, and on SIGUSR1): new
// connections use it. Thread-safe.
void install_settings(std::shared_ptr<const Settings> settings);

// How long a pooled SQLite connection's lookups share one read
// transaction (directory.hpp): beginning one costs SQLite four lock calls,
// three stat()s and a read, more than the message's lookups. A change made
// in place is seen this much later at most.
inline constexpr std::chrono::milliseconds snapshot_hold{100};

// Called every snapshot_hold (main's reloader thread) with or without
// mail: the pooled SQLite connections nobody is using end a read
// transaction held that long (so that a rollback-journal writer is not kept
// waiting by an idle one), look for a replacement of the replica (at most
// every check interval) and switch to a good one, closing the file it
// replaces, so that idle connections do not keep replaced files open (their
// descriptors and disk space), and report a refused or clock-skewed one.
// Thread-safe.
void tick_idle_readers() noexcept;

// The process's counters, which every callback counts into. Thread-safe.
MilterStats& filter_stats() noexcept;

// The callback table for smfi_register(); flags cover every action the
// filter may ask for (each connection negotiates the ones it needs).
smfiDesc filter_description() noexcept;

}  // namespace unit::milter
