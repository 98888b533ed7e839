// unitctl sync: the diff of a source against the primary (sync.hpp), the
// CSV source and its trailer, and the command's output and exit status.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <sstream>

#include "test_support.hpp"
#include "unit/csv.hpp"
#include "unit/primary.hpp"
#include "unit/sync.hpp"

using namespace unit;
using namespace unit::test;

namespace {

const std::string header = "kind,address,value,state\n";

const std::string base_rows =
    "domain,my.com,,\n"
    "domain,other.org,,\n"
    "unit,u1,smtp:[u1.my.com],active\n"
    "unit,u2,smtp:[u2.my.com],active\n"
    "mailbox,ann@my.com,u1,active\n"
    "mailbox,bob@my.com,u1,active\n"
    "mailbox,cat@my.com,u2,suspended\n"
    "mailbox,dan@other.org,u2,active\n"
    "alias,sales@my.com,ann@my.com,\n";

// `rows` as an export file: header, rows, trailer with their count.
std::string export_of(const std::string& rows) {
    std::uint64_t n = 0;
    for (char c : rows) n += c == '\n';
    return header + rows + fmt::format("end,,{},\n", n);
}

struct Db {
    TempDir dir;
    std::string path = dir.path("primary.db");
    Primary primary = [&] {
        auto p = Primary::init(path);
        REQUIRE(p.ok());
        std::istringstream in(header + base_rows);
        REQUIRE(p->import_csv(in, "base").ok());
        return std::move(p.value());
    }();

    std::string exported() {
        std::ostringstream out;
        REQUIRE(primary.export_csv(out).ok());
        return out.str();
    }
    Result<SyncPlan> sync(const std::string& rows, SyncOptions options = {}) {
        std::istringstream in(export_of(rows));
        auto source = read_csv_source(in, "src.csv", {});
        if (!source) return source.error();
        options.list_changes = true;
        return primary.sync(*source, options);
    }
    std::int64_t generation() { return primary.generation().value(); }
};

std::string replace(std::string text, const std::string& from, const std::string& to) {
    auto at = text.find(from);
    REQUIRE_MESSAGE(at != std::string::npos, from);
    return text.replace(at, from.size(), to);
}

std::vector<std::string> listed(const SyncPlan& plan) {
    std::vector<std::string> lines;
    for (const auto& change : plan.changes) lines.push_back(to_string(change));
    return lines;
}

void check_refused(const Result<SyncPlan>& r, Errc code, std::string_view text) {
    REQUIRE(!r.ok());
    CHECK(r.error().code == code);
    CHECK_MESSAGE(r.error().message.find(text) != std::string::npos, r.error().message);
}

}  // namespace

TEST_CASE("export ends with its trailer, and import takes files with or without it") {
    Db d;
    const auto csv = d.exported();
    CHECK(csv == export_of(replace(base_rows, "alias,sales", "alias,sales")));
    Db copy;
    std::istringstream in(csv);
    auto fresh = Primary::init(copy.dir.path("copy.db"));
    REQUIRE(fresh.ok());
    REQUIRE(fresh->import_csv(in, "x").ok());
    std::istringstream wrong(header + "domain,a.org,,\nend,,2,\n");
    auto r = fresh->import_csv(wrong, "x.csv");
    REQUIRE(!r.ok());
    CHECK(r.error().message == "x.csv:3: truncated: the end row counts 2 rows, the file has 1");
}

TEST_CASE("the same source twice: the second sync changes nothing, not even the generation") {
    Db d;
    const auto generation = d.generation();
    auto plan = d.sync(base_rows);
    REQUIRE(plan.ok());
    CHECK(plan->all().total() == 0);
    CHECK(d.generation() == generation);
    CHECK(plan->generation == generation);

    // The primary's own export, moves included, is a source equal to it.
    REQUIRE(d.primary.begin_move("bob@my.com", "u2").ok());
    const auto moved = d.generation();
    std::istringstream in(d.exported());
    auto source = read_csv_source(in, "export", {});
    REQUIRE(source.ok());
    auto again = d.primary.sync(*source, {});
    REQUIRE(again.ok());
    CHECK(again->all().total() == 0);
    CHECK(d.generation() == moved);
}

TEST_CASE("every kind of change, applied in one transaction") {
    Db d;
    std::string rows = base_rows;
    rows = replace(rows, "domain,other.org,,\n", "domain,new.net,,\n");  // domain removed, one added
    rows = replace(rows, "unit,u2,smtp:[u2.my.com],active", "unit,u2,lmtp:[u2.my.com]:24,draining");  // unit changed
    rows += "unit,u3,smtp:[u3.my.com],active\n";                                                      // unit added
    rows = replace(rows, "mailbox,dan@other.org,u2,active\n", "");                                    // mailbox removed
    rows += "mailbox,Eve@NEW.net,u3,\n";                                        // added, normalised
    rows = replace(rows, "cat@my.com,u2,suspended", "cat@my.com,u2,disabled");  // state changed
    rows = replace(rows, "ann@my.com,u1,active", "ann@my.com,u3,active");       // unit changed: move
    rows = replace(rows, "alias,sales@my.com,ann@my.com,\n", "alias,Info@my.com,eve@new.net,\n");
    auto plan = d.sync(rows);
    REQUIRE_MESSAGE(plan.ok(), plan.error().message);
    CHECK(listed(*plan) == std::vector<std::string>{
                               "add domain new.net",
                               "remove domain other.org",
                               "change unit u2 (smtp:[u2.my.com] active -> lmtp:[u2.my.com]:24 draining)",
                               "add unit u3 (smtp:[u3.my.com] active)",
                               "begin move of mailbox ann@my.com (u1 active -> u1 moving to u3)",
                               "change mailbox cat@my.com (u2 suspended -> u2 disabled)",
                               "remove mailbox dan@other.org (u2 active)",
                               "add mailbox eve@new.net (u3 active)",
                               "remove alias sales@my.com (-> ann@my.com)",
                               "add alias info@my.com (-> eve@new.net)",
                           });
    CHECK(plan->domains.added == 1);
    CHECK(plan->domains.removed == 1);
    CHECK(plan->units.added == 1);
    CHECK(plan->units.changed == 1);
    CHECK(plan->mailboxes.added == 1);
    CHECK(plan->mailboxes.changed == 1);
    CHECK(plan->mailboxes.removed == 1);
    CHECK(plan->mailboxes.moves_begun == 1);
    CHECK(plan->aliases.added == 1);
    CHECK(plan->aliases.removed == 1);
    CHECK(plan->generation == d.generation());
    auto ann = d.primary.mailbox("ann@my.com");
    CHECK(ann->unit == "u1");
    CHECK(ann->state == MailboxState::Moving);
    CHECK(ann->moving_to == "u3");
    CHECK(d.primary.check().value().empty());

    // The source now says what the primary says (ann moving to u3): nothing to do.
    const auto generation = d.generation();
    auto again = d.sync(rows);
    REQUIRE(again.ok());
    CHECK(again->all().total() == 0);
    CHECK(d.generation() == generation);

    // The copy is done and the move finished: still nothing.
    REQUIRE(d.primary.finish_move("ann@my.com").ok());
    CHECK(d.sync(rows)->all().total() == 0);
}

TEST_CASE("a mailbox moving: kept while the source names either end, a new unit starts another move") {
    Db d;
    REQUIRE(d.primary.begin_move("bob@my.com", "u2").ok());
    CHECK(d.sync(base_rows)->all().total() == 0);  // the source has not switched yet
    CHECK(d.sync(replace(base_rows, "bob@my.com,u1,", "bob@my.com,u2,"))->all().total() == 0);
    REQUIRE(d.primary.add_unit(UnitRecord{"u3", "smtp", "[u3.my.com]", UnitState::Active}).ok());
    std::string rows = base_rows + "unit,u3,smtp:[u3.my.com],active\n";
    auto plan = d.sync(replace(rows, "bob@my.com,u1,", "bob@my.com,u3,"));
    REQUIRE(plan.ok());
    CHECK(listed(*plan) ==
          std::vector<std::string>{"begin move of mailbox bob@my.com (u1 moving to u2 -> u1 moving to u3)"});
}

TEST_CASE("a suspended mailbox changes unit at once; suspending a moving one ends its move") {
    Db d;
    auto plan = d.sync(replace(base_rows, "cat@my.com,u2,", "cat@my.com,u1,"));
    REQUIRE(plan.ok());
    CHECK(listed(*plan) == std::vector<std::string>{"change mailbox cat@my.com (u2 suspended -> u1 suspended)"});
    REQUIRE(d.primary.begin_move("bob@my.com", "u2").ok());
    plan = d.sync(replace(replace(base_rows, "cat@my.com,u2,", "cat@my.com,u1,"), "bob@my.com,u1,active",
                          "bob@my.com,u1,disabled"));
    REQUIRE(plan.ok());
    CHECK(listed(*plan) == std::vector<std::string>{"change mailbox bob@my.com (u1 moving to u2 -> u1 disabled)"});
}

TEST_CASE("units removed: never from under a mailbox that still uses them") {
    Db d;
    const std::string without_u2 = replace(base_rows, "unit,u2,smtp:[u2.my.com],active\n", "");
    // cat and dan leave u2 for u1: dan's move keeps it on u2 until finished.
    const std::string moved = replace(replace(without_u2, "cat@my.com,u2,", "cat@my.com,u1,"), "dan@other.org,u2,",
                                      "dan@other.org,u1,");
    check_refused(
        d.sync(moved), Errc::Conflict,
        "unit u2: the source removes it, but mailbox dan@other.org stays on it until its move to u1 is finished");
    SyncOptions direct;
    direct.direct = true;
    auto plan = d.sync(moved, direct);
    REQUIRE_MESSAGE(plan.ok(), plan.error().message);
    CHECK(plan->units.removed == 1);
    CHECK(plan->mailboxes.changed == 2);
    CHECK(d.primary.check().value().empty());
}

TEST_CASE("a source that does not speak of a kind keeps the primary's") {
    Db d;
    REQUIRE(d.primary.begin_move("bob@my.com", "u2").ok());
    SourceDirectory source;  // as an LDAP tree: units and mailboxes, no domains or aliases
    source.units = std::vector<UnitRecord>{{"u1", "smtp", "[u1.my.com]", UnitState::Active}};
    source.mailboxes = std::vector<MailboxRecord>{{"ann@my.com", "u1", MailboxState::Active, ""},
                                                  {"bob@my.com", "u1", MailboxState::Active, ""}};
    SyncOptions options;
    options.list_changes = true;
    check_refused(d.primary.sync(source, options), Errc::Conflict,
                  "unit u2: the source removes it, but mailbox bob@my.com still uses it");
    source.units->push_back(UnitRecord{"u2", "smtp", "[u2.my.com]", UnitState::Active});
    source.mailboxes->push_back(MailboxRecord{"x@else.org", "u1", MailboxState::Active, ""});
    check_refused(d.primary.sync(source, options), Errc::Conflict, "mailbox x@else.org: domain else.org is not served");
    source.mailboxes->pop_back();
    auto plan = d.primary.sync(source, options);
    REQUIRE_MESSAGE(plan.ok(), plan.error().message);
    CHECK(listed(*plan) == std::vector<std::string>{"remove mailbox cat@my.com (u2 suspended)",
                                                    "remove mailbox dan@other.org (u2 active)"});
    CHECK(d.primary.aliases().value().size() == 1);  // sales@ -> ann@ is kept
    CHECK(d.primary.domains().value().size() == 2);
    // An alias the source keeps (by not speaking of aliases) may not lose its target.
    source.mailboxes->erase(source.mailboxes->begin());
    check_refused(d.primary.sync(source, options), Errc::Conflict, "sales@my.com");
}

TEST_CASE("--direct applies a unit change at once") {
    Db d;
    SyncOptions options;
    options.direct = true;
    auto plan = d.sync(replace(base_rows, "ann@my.com,u1,", "ann@my.com,u2,"), options);
    REQUIRE(plan.ok());
    CHECK(listed(*plan) == std::vector<std::string>{"change mailbox ann@my.com (u1 active -> u2 active)"});
    CHECK(d.primary.mailbox("ann@my.com")->unit == "u2");
}

TEST_CASE("a dry run computes the plan, checks it, and writes nothing") {
    Db d;
    const auto before = d.exported();
    const auto generation = d.generation();
    SyncOptions options;
    options.dry_run = true;
    auto plan = d.sync(replace(base_rows, "mailbox,bob@my.com,u1,active\n", "mailbox,new@my.com,u1,\n"), options);
    REQUIRE(plan.ok());
    CHECK(plan->mailboxes.added == 1);
    CHECK(plan->mailboxes.removed == 1);
    CHECK(plan->generation == generation);
    CHECK(d.exported() == before);
    CHECK(d.generation() == generation);
}

TEST_CASE("what a sync refuses, changing nothing") {
    Db d;
    const auto before = d.exported();
    SUBCASE("a unit the source lacks") {
        check_refused(d.sync(replace(base_rows, "ann@my.com,u1,", "ann@my.com,u9,")), Errc::NotFound,
                      "mailbox ann@my.com: unit u9: no such unit (a sync never creates a unit)");
    }
    SUBCASE("a domain not served") {
        check_refused(d.sync(base_rows + "mailbox,x@nowhere.org,u1,\n"), Errc::Conflict,
                      "mailbox x@nowhere.org: domain nowhere.org is not served");
    }
    SUBCASE("a mailbox twice") {
        check_refused(d.sync(base_rows + "mailbox,ANN@my.com,u1,\n"), Errc::Invalid,
                      "mailbox ann@my.com: twice in the source");
    }
    SUBCASE("a bad unit value") {
        check_refused(d.sync(replace(base_rows, "smtp:[u1.my.com]", "smtp:[u1 my.com]")), Errc::Invalid, "");
    }
    SUBCASE("an alias left dangling") {
        std::string rows = replace(base_rows, "mailbox,ann@my.com,u1,active\n", "");
        SyncOptions options;
        options.max_removed = RemovalLimit{10, false};
        check_refused(d.sync(rows, options), Errc::Conflict, "sales@my.com");
    }
    SUBCASE("an alias target whose local part needs quoting") {  // found by fuzz_sync
        check_refused(d.sync(base_rows + "alias,info@my.com,m.@elsewhere.org,\n"), Errc::Invalid,
                      "bad alias target \"m.@elsewhere.org\": its local part needs quoting");
    }
    SUBCASE("a source without mailboxes") {
        check_refused(d.sync("domain,my.com,,\ndomain,other.org,,\n"), Errc::Conflict,
                      "the source has no mailboxes at all: refusing to remove all 4");
    }
    SUBCASE("a truncated file") {
        for (const auto& [csv, message] : std::vector<std::pair<std::string, std::string>>{
                 {header + base_rows, "src.csv: truncated: no end row after 9 rows"},
                 {header + base_rows + "end,,10,\n",
                  "src.csv:11: truncated: the end row counts 10 rows, the file has 9"},
                 {header + base_rows.substr(0, base_rows.size() - 12), "src.csv: truncated: no end row after 9 rows"},
                 {header + base_rows + "end,,9,\nmailbox,x@my.com,u1,\n", "src.csv:12: a row after the end row"},
                 {header + "mailbox,\"ann@my.com", "src.csv: line 2: unterminated quoted field"},
             }) {
            std::istringstream in(csv);
            auto source = read_csv_source(in, "src.csv", {});
            REQUIRE(!source.ok());
            CHECK_MESSAGE(source.error().message.find(message) == 0, source.error().message);
        }
    }
    CHECK(d.exported() == before);
}

TEST_CASE("an empty source syncs into an empty primary") {
    TempDir dir;
    auto p = Primary::init(dir.path("p.db"));
    REQUIRE(p.ok());
    std::istringstream in(export_of(""));
    auto source = read_csv_source(in, "empty", {});
    REQUIRE(source.ok());
    auto plan = p->sync(*source, {});
    REQUIRE(plan.ok());
    CHECK(plan->all().total() == 0);
}

TEST_CASE("the removal threshold: a count, a percentage, and the default") {
    TempDir dir;
    auto p = Primary::init(dir.path("p.db"));
    REQUIRE(p.ok());
    constexpr int mailboxes = 12000;  // 5% is 600, more than 500
    const std::string kinds = "domain,my.com,,\nunit,u1,smtp:[u1.my.com],active\n";
    auto from = [&](int first) {  // the source without the mailboxes before `first`
        std::string rows = kinds;
        for (int i = first; i < mailboxes; ++i) rows += fmt::format("mailbox,user{:05}@my.com,u1,\n", i);
        return rows;
    };
    std::istringstream in(header + from(0));
    REQUIRE(p->import_csv(in, "big").ok());
    const auto generation = p->generation().value();
    auto sync = [&](int removed, std::optional<RemovalLimit> limit) {
        std::istringstream src(export_of(from(removed)));
        auto source = read_csv_source(src, "src", {});
        REQUIRE(source.ok());
        SyncOptions options;
        options.max_removed = limit;
        options.dry_run = true;
        return p->sync(*source, options);
    };
    check_refused(sync(601, std::nullopt), Errc::Conflict,
                  "the sync removes 601 of the 12000 mailboxes, more than 600 (user00000@my.com, user00001@my.com, "
                  "user00002@my.com, user00003@my.com, user00004@my.com, ...)");
    CHECK(sync(600, std::nullopt).ok());
    check_refused(sync(11, RemovalLimit{10, false}), Errc::Conflict, "more than 10");
    CHECK(sync(10, RemovalLimit{10, false}).ok());
    check_refused(sync(121, RemovalLimit{1, true}), Errc::Conflict, "more than 120");
    CHECK(sync(120, RemovalLimit{1, true}).ok());
    CHECK(p->generation().value() == generation);  // dry runs
}

// ------------------------------------------------------------ unitctl sync

namespace {

struct Ctl {
    TempDir dir;
    std::string binary = env_or_fail("UNITCTL");
    std::string db = dir.path("primary.db");
    CommandResult run(std::vector<std::string> args, const std::string& input = {}) const {
        args.insert(args.begin(), {binary, "--db", db});
        return run_command(args, input);
    }
};

}  // namespace

TEST_CASE("unitctl sync: summary, -v, --dry-run, stdin, exit status") {
    Ctl ctl;
    REQUIRE(ctl.run({"init"}).exit_code == 0);
    REQUIRE(ctl.run({"import", "-"}, header + base_rows).exit_code == 0);
    const std::string changed = replace(base_rows, "bob@my.com,u1,active", "bob@my.com,u2,active");

    auto r = ctl.run({"sync", "--dry-run", "-"}, export_of(changed));
    CHECK(r.exit_code == 0);
    CHECK(r.err == "");  // stderr is no terminal: no progress line
    CHECK(r.out == "added 0 changed 0 removed 0 moves begun 1 (dry run: nothing changed)\n");

    write_file(ctl.dir.path("src.csv"), export_of(changed));
    r = ctl.run({"sync", "-v", ctl.dir.path("src.csv")});
    CHECK(r.exit_code == 0);
    CHECK(r.out ==
          "begin move of mailbox bob@my.com (u1 active -> u1 moving to u2)\n"
          "mailboxes: added 0 changed 0 removed 0 moves begun 1\n"
          "added 0 changed 0 removed 0 moves begun 1, generation 10\n");
    r = ctl.run({"sync", ctl.dir.path("src.csv")});
    CHECK(r.out == "added 0 changed 0 removed 0 moves begun 0, generation 10\n");

    r = ctl.run({"sync", "-"}, header + changed);
    CHECK(r.exit_code == 1);
    CHECK(r.out == "");
    CHECK(r.err == "unitctl: stdin: truncated: no end row after 9 rows (an export ends with end,,ROWS,)\n");

    r = ctl.run({"sync", "--max-removed", "1", "-"},
                export_of(replace(changed, "mailbox,ann@my.com,u1,active\nmailbox,bob@my.com,u2,active\n", "")));
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("unitctl: the sync removes 2 of the 4 mailboxes, more than 1 (ann@my.com, bob@my.com)") == 0);

    r = ctl.run({"sync", "--ldap"});
    CHECK(r.exit_code == 1);
    CHECK(r.out == "");
    CHECK(r.err.find("unitctl: ") == 0);

    CHECK(ctl.run({"sync"}).exit_code == 2);
    CHECK(ctl.run({"sync", "--ldap", "-"}).exit_code == 2);
    CHECK(ctl.run({"sync", "--max-removed", "5x", "-"}).exit_code == 2);
    CHECK(ctl.run({"sync", ctl.dir.path("missing.csv")}).exit_code == 1);
}
