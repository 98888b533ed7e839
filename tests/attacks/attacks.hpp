// attacks.hpp: the hostile clients thrown at a running unitpolicy, one
// attack at a time, each for a few seconds.
//
// An attack connects to the target's sockets, misbehaves, and checks what
// the server must do about it (close the connection at a limit, answer the
// requests that were whole, never hang); it reports those problems, a
// one-line summary, and what the server may hold for it: the most
// attacking connections open at once and the request and answer bytes the
// limits let the server keep for each. The caller judges the rest (the
// daemon alive, the well-behaved client's latency, the memory bound).
// Attacks never throw and log nothing; each blocks until it is over.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "target.hpp"

namespace unit::attacks {

struct AttackOutcome {
    std::vector<std::string> problems;  // empty: the server did what it must
    std::string summary;
    std::size_t connections = 0;          // attacking connections open at once, at most
    std::size_t held_per_connection = 0;  // request and answer bytes the server may keep for each
};

struct Attack {
    const char* name;
    const char* what;
    AttackOutcome (*run)(const Target& target);
};

// The attacks in the order they run.
std::span<const Attack> all_attacks();

// Malformed bytes (attacks_bytes.cpp).
AttackOutcome oversized_line(const Target& target);
AttackOutcome ten_megabytes(const Target& target);
AttackOutcome binary_garbage(const Target& target);
AttackOutcome bad_netstrings(const Target& target);
// Connections that hold on or let go (attacks_connections.cpp).
AttackOutcome slowloris(const Target& target);
AttackOutcome idle_flood(const Target& target);
AttackOutcome idle_hold(const Target& target);
AttackOutcome half_closed(const Target& target);
AttackOutcome unread_answers(const Target& target);

}  // namespace unit::attacks
