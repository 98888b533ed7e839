// The attacks with connections: clients that trickle, that never speak,
// that let go half-way, that never read their answers. The server must
// close what stalls within request_timeout, make room for new clients at
// max_connections by closing connections that never asked anything first,
// then the ones idle the longest, and never lose track of a connection.
#include <poll.h>

#include <fmt/format.h>

#include <atomic>
#include <optional>
#include <thread>

#include "attack_support.hpp"
#include "attacks.hpp"
#include "load.hpp"
#include "raw_socket.hpp"

namespace unit::attacks {

namespace {

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::uint64_t counter_now(const Target& target, const char* name) {
    return counter(read_counters(target.control), name);
}

void expect_counted(const Target& target, const char* name, std::uint64_t before, std::uint64_t expected,
                    AttackOutcome& outcome) {
    std::uint64_t counted = counter_now(target, name) - before;
    if (counted < expected)
        outcome.problems.push_back(fmt::format("{} went up by {}, not {}", name, counted, expected));
}

}  // namespace

AttackOutcome slowloris(const Target& target) {
    constexpr std::size_t count = 50;  // half on each socket
    struct Slow {
        RawSocket socket;
        std::string request;
        std::size_t sent = 0;
        Clock::time_point opened;
        std::optional<Clock::duration> closed_after;
    };
    const std::uint64_t before = counter_now(target, "connections_closed_slow");
    Problems problems;
    std::vector<Slow> slow(count);
    for (std::size_t i = 0; i < count; ++i) {
        const bool is_policy = i % 2 == 0;
        slow[i].socket = RawSocket::connect(is_policy ? target.policy : target.socketmap);
        slow[i].request = is_policy ? policy_request(target.mailbox) : socketmap_request("transportmx", target.mailbox);
        slow[i].opened = Clock::now();
        if (!slow[i].socket.ok()) problems.add("connect failed");
    }
    const auto start = Clock::now();
    const auto give_up = start + close_allowance(target);
    auto next_byte = start;
    for (std::size_t open = count; open > 0 && Clock::now() < give_up;) {
        const auto now = Clock::now();
        const bool send_now = now >= next_byte;  // one byte a second, never the last one
        if (send_now) next_byte += 1s;
        open = 0;
        for (auto& s : slow) {
            if (!s.socket.ok()) continue;
            if (s.socket.wait_closed(0ms)) {
                s.closed_after = now - s.opened;
                if (!s.socket.received().empty()) problems.add("a request still arriving was answered");
                s.socket.close();
                continue;
            }
            ++open;
            if (send_now && s.sent + 1 < s.request.size() && s.socket.send_nowait(s.request.substr(s.sent, 1)))
                ++s.sent;
        }
        std::this_thread::sleep_for(20ms);
    }
    double first = 1e9, last = 0;
    std::size_t closed = 0;
    for (const auto& s : slow) {
        if (!s.closed_after) continue;
        ++closed;
        first = std::min(first, seconds(*s.closed_after));
        last = std::max(last, seconds(*s.closed_after));
    }
    AttackOutcome outcome{problems.list(), {}, count, 64};
    const double timeout = static_cast<double>(target.limits.request_timeout.count());
    outcome.summary = closed == 0 ? fmt::format("{} clients at 1 byte/s, none closed", count)
                                  : fmt::format("{} clients at 1 byte/s, {} closed after {:.1f} to {:.1f} s", count,
                                                closed, first, last);
    if (closed < count)
        outcome.problems.push_back(fmt::format("{} of {} slow clients still connected after {:.1f} s", count - closed,
                                               count, seconds(close_allowance(target))));
    if (closed > 0 && first < timeout - 0.1)
        outcome.problems.push_back(fmt::format("a slow client was closed after {:.1f} s, before request_timeout",
                                               first));
    expect_counted(target, "connections_closed_slow", before, count, outcome);
    return outcome;
}

AttackOutcome idle_flood(const Target& target) {
    constexpr std::size_t count = 2000;
    const Counters before = read_counters(target.control);
    const std::size_t limit = target.limits.max_connections;
    Problems problems;
    std::vector<RawSocket> idle;
    idle.reserve(count);
    const auto start = Clock::now();
    for (std::size_t i = 0; i < count; ++i) {
        idle.push_back(RawSocket::connect(i % 2 == 0 ? target.policy : target.socketmap));
        if (!idle.back().ok()) problems.add("connect failed");
    }
    const auto opened_in = Clock::now() - start;

    // Once the server has accepted them all: never more than the limit open,
    // the oldest closed to make room.
    Counters full;
    for (auto until = Clock::now() + 5s; Clock::now() < until; std::this_thread::sleep_for(20ms)) {
        full = read_counters(target.control);
        if (counter(full, "connections_accepted") >= counter(before, "connections_accepted") + count) break;
    }
    const std::uint64_t open = counter(full, "connections_open");
    const std::uint64_t made_room = counter(full, "connections_closed_full") -
                                    counter(before, "connections_closed_full");
    const std::uint64_t expected_room = counter(before, "connections_open") + count - limit;

    // The next client, past the limit, is answered at once.
    load::Client next(target.policy);
    const auto asked = Clock::now();
    load::Reply reply = next.ask({load::Protocol::Policy, "", target.mailbox, true});
    const double answered_ms = seconds(Clock::now() - asked) * 1000;
    if (!reply.ok || reply.text != "DUNNO")
        problems.add(fmt::format("a client past max_connections got no answer: {}", reply.text));
    else if (answered_ms > 1000)
        problems.add(fmt::format("a client past max_connections waited {:.0f} ms for its answer", answered_ms));

    std::this_thread::sleep_for(1500ms);  // the well-behaved client keeps going meanwhile
    std::size_t closed_old = 0, closed_new = 0;
    const std::size_t quarter = count / 4;
    for (std::size_t i = 0; i < count; ++i) {
        if (!idle[i].peer_closed()) continue;
        if (i < quarter) ++closed_old;
        if (i >= count - quarter) ++closed_new;
    }
    AttackOutcome outcome{problems.list(),
                          fmt::format("{} idle connections in {:.2f} s: {} open, {} oldest closed to make room, the "
                                      "next client answered in {:.1f} ms",
                                      count, seconds(opened_in), open, made_room, answered_ms),
                          std::min(count, limit), 0};
    if (full.empty()) outcome.problems.push_back("no counters from the control socket");
    if (open > limit)
        outcome.problems.push_back(fmt::format("{} connections open, max_connections is {}", open, limit));
    if (made_room < expected_room)
        outcome.problems.push_back(fmt::format("{} connections closed to make room, {} expected", made_room,
                                               expected_room));
    // The oldest quarter made room; the newest quarter is still served.
    if (closed_old < quarter)
        outcome.problems.push_back(fmt::format("only {} of the {} oldest idle connections closed", closed_old,
                                               quarter));
    if (closed_new > 0)
        outcome.problems.push_back(fmt::format("{} of the {} newest connections closed", closed_new, quarter));
    return outcome;
}

// On the code before issue 13, a connection that had answered requests
// went before the attacker's newer ones: a client idle longer than the
// attacker took to cycle through max_connections lost its connection.
AttackOutcome idle_hold(const Target& target) {
    const std::size_t count = target.limits.max_connections;
    constexpr auto ask_every = 1500ms;  // idle between requests, like an smtpd between two mails
    constexpr int asks = 4;
    Problems problems;
    std::atomic<bool> held{false}, done{false};
    std::atomic<std::uint64_t> reopened{0};
    // The attacker: max_connections connections that never say a word, each
    // one the server closes opened again (at most one every 500 µs).
    std::thread attacker([&] {
        std::vector<RawSocket> idle(count);
        std::vector<pollfd> watched(count);
        auto open = [&](std::size_t i) {
            idle[i] = RawSocket::connect(i % 2 == 0 ? target.policy : target.socketmap);
            if (!idle[i].ok()) problems.add("connect failed");
            watched[i] = {idle[i].fd(), POLLIN, 0};
        };
        for (std::size_t i = 0; i < count; ++i) open(i);
        held = true;
        Pacer pacer(500us);
        while (!done) {
            if (poll(watched.data(), watched.size(), 10) <= 0) continue;
            for (std::size_t i = 0; i < count && !done; ++i) {
                if (watched[i].revents == 0) continue;
                pacer.wait();
                open(i);
                ++reopened;
            }
        }
    });
    while (!held) std::this_thread::sleep_for(10ms);
    // A client of Postfix's kind: one connection, idle between requests.
    load::Client postfix(target.policy);
    int answered = 0, failed = 0;
    Pacer pacer(ask_every);
    for (int i = 0; i < asks; ++i, pacer.wait()) {
        load::Reply reply = postfix.ask({load::Protocol::Policy, "", target.mailbox, true});
        if (reply.ok && reply.text == "DUNNO") ++answered;
        else ++failed;
    }
    done = true;
    attacker.join();
    AttackOutcome outcome{problems.list(),
                          fmt::format("{} idle connections held, {} reopened after the server closed them; a client "
                                      "asking every {} ms: {} answered, {} found its connection closed",
                                      count, reopened.load(), ask_every.count(), answered, failed),
                          count, 0};
    if (failed > 0)
        outcome.problems.push_back(fmt::format(
            "{} of {} requests of a client idle between requests found its connection closed", failed, asks));
    return outcome;
}

AttackOutcome half_closed(const Target& target) {
    const std::string policy = policy_request(target.mailbox);
    const std::string socketmap = socketmap_request("transportmx", target.mailbox);
    const std::string pipelined = socketmap + socketmap + socketmap;
    Problems problems;
    std::atomic<std::uint64_t> connections{0}, answered_after_shutdown{0};
    constexpr unsigned threads = 2;
    constexpr unsigned variants = 6;
    run_threads(threads, 3s, [&](unsigned index, Clock::time_point deadline) {
        Pacer pacer(1ms);
        for (unsigned i = index; Clock::now() < deadline; i += threads, pacer.wait()) {
            const unsigned variant = i % variants;
            const bool is_policy = variant % 2 == 0;
            RawSocket s = RawSocket::connect(is_policy ? target.policy : target.socketmap);
            if (!s.ok()) {
                problems.add("connect failed");
                continue;
            }
            ++connections;
            const std::string& whole = is_policy ? policy : socketmap;
            switch (variant / 2) {
            case 0:  // half a request (or half a netstring), then close
                s.send_all(std::string_view(whole).substr(0, whole.size() / 2));
                s.close();
                break;
            case 1:  // a whole request, then shutdown(SHUT_WR): the answer still comes, then the end
                s.send_all(whole);
                s.shutdown_write();
                if (!s.wait_closed(close_allowance(target))) problems.add("not closed after the client's shutdown");
                if (s.received().find(is_policy ? "action=DUNNO\n\n" : ":OK ") == std::string::npos)
                    problems.add("no answer after the client's shutdown");
                else ++answered_after_shutdown;
                break;
            case 2:  // answers arriving, unread, when the client closes: a reset
                s.send_all(is_policy ? policy : pipelined);
                s.readable(1s);
                s.abort();
                break;
            }
        }
    });
    return {problems.list(),
            fmt::format("{} connections left half-way, {} answered after a shutdown", connections.load(),
                        answered_after_shutdown.load()),
            threads, target.limits.max_request + server_feed_slice};
}

AttackOutcome unread_answers(const Target& target) {
    constexpr unsigned count = 10;
    std::string block;
    while (block.size() < 64 * 1024) block += socketmap_request("alias", target.alias);
    const std::uint64_t before = counter_now(target, "connections_closed_slow");
    Problems problems;
    std::mutex mutex;
    double first = 1e9, last = 0;
    std::size_t most_taken = 0;
    run_threads(count, 0ms, [&](unsigned, Clock::time_point) {
        RawSocket s = RawSocket::connect(target.socketmap);
        if (!s.ok()) {
            problems.add("connect failed");
            return;
        }
        s.set_send_timeout(close_allowance(target));
        const auto start = Clock::now();
        std::size_t taken = 0;
        while (s.send_all(block, taken)) {
        }
        const double after = seconds(Clock::now() - start);
        if (!s.peer_closed()) {
            problems.add("the server neither read on nor closed the connection");
            return;
        }
        std::lock_guard lock(mutex);
        first = std::min(first, after);
        last = std::max(last, after);
        most_taken = std::max(most_taken, taken);
    });
    // What the server keeps for one such client: one read (16 KiB)
    // unparsed, one slice in the parser, and twice (waiting, being sent)
    // 16 KiB of answers plus the answers to one slice of requests (an
    // alias answer here is under 4 times its request).
    const std::size_t held = server_read_chunk + server_feed_slice +
                             2 * (server_pending_output + 4 * server_feed_slice);
    AttackOutcome outcome{problems.list(), {}, count, held};
    outcome.summary = last == 0 ? fmt::format("{} clients pipelining alias lookups, never reading: none closed", count)
                                : fmt::format(
                                      "{} clients pipelining alias lookups, never reading: closed after {:.1f} "
                                      "to {:.1f} s, at most {} KiB taken",
                                      count, first, last, most_taken / 1024);
    expect_counted(target, "connections_closed_slow", before, count, outcome);
    return outcome;
}

}  // namespace unit::attacks
