// test_moves.cpp: bulk moves (unit/moves.hpp): every selection, all or
// nothing, idempotence, suspended and disabled mailboxes moved at once,
// slices progressing to the end, and a 100,000-mailbox unit evacuated.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <sstream>

#include "test_support.hpp"
#include "unit/csv.hpp"
#include "unit/primary.hpp"

using namespace unit;
using namespace unit::test;

namespace {

// example.com; units a (active), b (active), c (draining); on a: m0..m{n-1}
// active, s0 suspended, d0 disabled.
struct Db {
    TempDir dir;
    Primary primary;

    explicit Db(int mailboxes = 5) : primary(Primary::init(dir.path("primary.db")).value()) {
        std::ostringstream csv;
        write_csv_row(csv, {"kind", "address", "value", "state"});
        write_csv_row(csv, {"domain", "example.com", "", ""});
        for (const char* u : {"a", "b", "c"})
            write_csv_row(csv,
                          {"unit", u, fmt::format("smtp:[{}.example.com]", u), u[0] == 'c' ? "draining" : "active"});
        for (int i = 0; i < mailboxes; ++i)
            write_csv_row(csv, {"mailbox", fmt::format("m{:06}@example.com", i), "a", "active"});
        write_csv_row(csv, {"mailbox", "s0@example.com", "a", "suspended"});
        write_csv_row(csv, {"mailbox", "d0@example.com", "a", "disabled"});
        std::istringstream in(csv.str());
        auto r = primary.import_csv(in, "test");
        REQUIRE_MESSAGE(r.ok(), r.error().message);
    }

    MailboxRecord mailbox(const std::string& address) { return primary.mailbox(address).value(); }
    std::int64_t on(const std::string& unit) { return static_cast<std::int64_t>(primary.mailboxes(unit)->size()); }
};

MoveSelection addresses(std::vector<std::string> list) { return MoveSelection{std::move(list), {}, {}}; }
MoveSelection from_unit(const std::string& unit, std::optional<std::int64_t> limit = {}) {
    return MoveSelection{{}, unit, limit};
}

template <class T>
void check_error(const Result<T>& r, Errc code, std::string_view text) {
    REQUIRE(!r.ok());
    CHECK(r.error().code == code);
    CHECK_MESSAGE(r.error().message.find(text) != std::string::npos, r.error().message);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("begin on several addresses: active held, suspended and disabled moved at once with their state") {
    Db d;
    auto r = d.primary.begin_moves(addresses({"M000000@Example.com", "m000001@example.com", "s0@example.com",
                                              "d0@example.com", "m000000@example.com"}),
                                   "b");
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(r->moved == 4);
    CHECK(r->held == 2);  // the repeated address counts once
    CHECK(r->direct == 2);
    CHECK(r->unchanged == 0);
    CHECK(r->changes == std::vector<std::string>{"m000000@example.com: a -> b held", "m000001@example.com: a -> b held",
                                                 "s0@example.com: a -> b direct, suspended",
                                                 "d0@example.com: a -> b direct, disabled"});
    CHECK(d.mailbox("m000000@example.com").state == MailboxState::Moving);
    CHECK(d.mailbox("m000000@example.com").moving_to == "b");
    CHECK(d.mailbox("s0@example.com").unit == "b");
    CHECK(d.mailbox("s0@example.com").state == MailboxState::Suspended);
    CHECK(d.mailbox("d0@example.com").unit == "b");
    CHECK(d.mailbox("d0@example.com").state == MailboxState::Disabled);

    // Idempotent: the same call again changes nothing, not even the generation.
    const auto generation = d.primary.generation().value();
    r = d.primary.begin_moves(addresses({"m000000@example.com", "m000001@example.com", "s0@example.com",
                                         "d0@example.com"}),
                              "b");
    REQUIRE(r.ok());
    CHECK(r->moved == 0);
    CHECK(r->unchanged == 4);
    CHECK(d.primary.generation().value() == generation);

    r = d.primary.finish_moves(addresses({"m000000@example.com", "m000001@example.com"}));
    REQUIRE(r.ok());
    CHECK(r->moved == 2);
    CHECK(d.mailbox("m000001@example.com").unit == "b");
    CHECK(d.mailbox("m000001@example.com").state == MailboxState::Active);
}

TEST_CASE("a bad address or a conflict fails the whole call, names the address and changes nothing") {
    Db d;
    REQUIRE(d.primary.begin_move("m000003@example.com", "c").ok() == false);  // c is draining
    REQUIRE(d.primary.begin_move("m000004@example.com", "b").ok());
    const auto generation = d.primary.generation().value();
    check_error(d.primary.begin_moves(addresses({"m000000@example.com", "nobody@example.com"}), "b"), Errc::NotFound,
                "mailbox nobody@example.com: no such mailbox");
    check_error(d.primary.begin_moves(addresses({"m000000@example.com", "no-at-sign"}), "b"), Errc::Invalid, "");
    check_error(d.primary.begin_moves(addresses({"m000000@example.com", "m000004@example.com"}), "a"), Errc::Conflict,
                "mailbox m000004@example.com: already moving to b");
    check_error(d.primary.begin_moves(addresses({"m000000@example.com"}), "c"), Errc::Conflict, "c is draining");
    check_error(d.primary.begin_moves(addresses({"m000000@example.com"}), "z"), Errc::NotFound, "unit z: no such unit");
    check_error(d.primary.begin_moves(from_unit("z"), "b"), Errc::NotFound, "unit z: no such unit");
    check_error(d.primary.begin_moves(from_unit("a"), "a"), Errc::Conflict, "to itself");
    check_error(d.primary.begin_moves(from_unit("a", 0), "b"), Errc::Invalid, "at least 1");
    check_error(d.primary.begin_moves(MoveSelection{{"m000000@example.com"}, {}, 2}, "b"), Errc::Invalid,
                "mailboxes of a unit only");
    check_error(d.primary.finish_moves(addresses({"m000004@example.com", "m000000@example.com"})), Errc::Conflict,
                "mailbox m000000@example.com: not moving");
    check_error(d.primary.abort_moves(addresses({"m000004@example.com", "nobody@example.com"})), Errc::NotFound,
                "nobody@example.com");
    CHECK(d.primary.generation().value() == generation);
    CHECK(d.mailbox("m000000@example.com").state == MailboxState::Active);
    CHECK(d.mailbox("m000004@example.com").moving_to == "b");
}

TEST_CASE("an evacuation: a draining unit moved in slices to the end, then removed") {
    Db d(25);
    REQUIRE(d.primary.change_unit("a", UnitChange{UnitState::Draining, {}, {}}).ok());
    REQUIRE(d.primary.change_unit("c", UnitChange{UnitState::Down, {}, {}}).ok());  // a down target is accepted
    std::int64_t held = 0, direct = 0, slices = 0;
    for (;;) {
        auto r = d.primary.begin_moves(from_unit("a", 10), "c");
        REQUIRE_MESSAGE(r.ok(), r.error().message);
        if (r->moved == 0) break;
        CHECK(r->moved <= 10);
        CHECK(r->unchanged == 0);
        if (slices == 0)  // by address: d0, m000000..m000008
            CHECK(r->changes.front() == "d0@example.com: a -> c direct, disabled");
        held += r->held;
        direct += r->direct;
        ++slices;
    }
    CHECK(slices == 3);
    CHECK(held == 25);
    CHECK(direct == 2);
    CHECK(d.on("c") == 2);  // the suspended and disabled ones
    check_error(d.primary.remove_unit("a"), Errc::Conflict, "still has 25");

    // finish --from-unit takes the moves away from a, in slices too.
    auto r = d.primary.finish_moves(from_unit("a", 20));
    REQUIRE(r.ok());
    CHECK(r->moved == 20);
    r = d.primary.finish_moves(from_unit("a"));
    REQUIRE(r.ok());
    CHECK(r->moved == 5);
    CHECK(d.primary.finish_moves(from_unit("a"))->moved == 0);
    CHECK(d.on("a") == 0);
    CHECK(d.on("c") == 27);
    CHECK(d.mailbox("s0@example.com").state == MailboxState::Suspended);
    CHECK(d.mailbox("m000024@example.com").state == MailboxState::Active);
    REQUIRE(d.primary.remove_unit("a").ok());
    CHECK(d.primary.check().value().empty());
}

TEST_CASE("abort --from-unit leaves the mailboxes on their unit; other moves are not taken") {
    Db d(4);
    REQUIRE(d.primary.begin_move("m000000@example.com", "b").ok());
    REQUIRE(d.primary.change_unit("c", UnitChange{UnitState::Active, {}, {}}).ok());
    REQUIRE(d.primary.begin_move("m000001@example.com", "c").ok());
    // begin --from-unit skips mailboxes already moving (to any unit).
    auto r = d.primary.begin_moves(from_unit("a"), "b");
    REQUIRE(r.ok());
    CHECK(r->held == 2);
    CHECK(r->direct == 2);
    CHECK(d.mailbox("m000001@example.com").moving_to == "c");
    r = d.primary.abort_moves(from_unit("a"));
    REQUIRE(r.ok());
    CHECK(r->moved == 4);
    CHECK(d.on("a") == 4);
    const auto on_a = d.primary.mailboxes(std::string("a"));
    REQUIRE(on_a.ok());
    for (const auto& m : on_a.value()) CHECK(m.state == MailboxState::Active);
}

TEST_CASE("a 100,000-mailbox unit evacuated in 10 slices") {
    constexpr int total = 100'000;
    Db d(total);
    REQUIRE(d.primary.change_unit("a", UnitChange{UnitState::Draining, {}, {}}).ok());
    auto start = std::chrono::steady_clock::now();
    std::int64_t moved = 0;
    for (int slice = 0; slice < 10; ++slice) {
        auto r = d.primary.begin_moves(from_unit("a", 10'002 - (slice == 0 ? 0 : 2)), "b");
        REQUIRE(r.ok());
        moved += r->moved;
    }
    const double begin_seconds = seconds_since(start);
    CHECK(moved == total + 2);
    CHECK(d.primary.begin_moves(from_unit("a"), "b")->moved == 0);
    start = std::chrono::steady_clock::now();
    moved = 0;
    for (int slice = 0; slice < 10; ++slice) moved += d.primary.finish_moves(from_unit("a", 10'000))->moved;
    const double finish_seconds = seconds_since(start);
    CHECK(moved == total);
    CHECK(d.on("a") == 0);
    CHECK(d.on("b") == total + 2);
    REQUIRE(d.primary.remove_unit("a").ok());
    MESSAGE(fmt::format("100,000 mailboxes in 10 slices: begin {:.2f} s, finish {:.2f} s", begin_seconds,
                        finish_seconds));
}
