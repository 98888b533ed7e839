// The attacks in the order hostile runs them.
#include "attacks.hpp"

namespace unit::attacks {

namespace {

const Attack attacks[] = {
    {"oversized_line", "policy lines longer than max_line", oversized_line},
    {"ten_megabytes", "a 10 MB request on each socket, sent as fast as possible", ten_megabytes},
    {"binary_garbage", "random bytes, NUL included, on both sockets", binary_garbage},
    {"bad_netstrings", "malformed netstrings on the socketmap socket", bad_netstrings},
    {"slowloris", "50 clients sending one byte a second", slowloris},
    {"idle_flood", "2,000 idle connections, twice max_connections", idle_flood},
    {"idle_hold", "max_connections idle connections held, each one closed opened again", idle_hold},
    {"half_closed", "clients leaving mid-request, after shutdown(SHUT_WR), or with a reset", half_closed},
    {"unread_answers", "clients pipelining requests and never reading the answers", unread_answers},
};

}  // namespace

std::span<const Attack> all_attacks() { return attacks; }

}  // namespace unit::attacks
