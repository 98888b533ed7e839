// test_unitctl.cpp: unitctl driven as a program (the binary meson built), on
// databases in a TempDir: exit status, stdout and the exact stderr line.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "json_reader.hpp"
#include "test_support.hpp"

namespace {

using unit::test::CommandResult;
using unit::test::env_or_fail;
using unit::test::JsonValue;
using unit::test::parse_json;
using unit::test::raw_sql;
using unit::test::read_file;
using unit::test::run_command;
using unit::test::TempDir;
using unit::test::write_file;

using Args = std::vector<std::string>;

// One database in a fresh directory, and unitctl to run on it.
class Ctl {
public:
    Ctl() : binary_(env_or_fail("UNITCTL")), db_(dir_.path("primary.db")) {}

    const std::string& db() const { return db_; }
    std::string path(const std::string& name) const { return dir_.path(name); }

    // unitctl ARGS (no --db).
    CommandResult raw(Args args, const std::string& input = {}) const {
        args.insert(args.begin(), binary_);
        return run_command(args, input);
    }
    // unitctl --db DB ARGS.
    CommandResult run(Args args, const std::string& input = {}) const {
        args.insert(args.begin(), {"--db", db_});
        return raw(std::move(args), input);
    }
    // unitctl --db DB ARGS, which must succeed silently on stderr: its stdout.
    std::string ok(Args args, const std::string& input = {}) const {
        const auto r = run(args, input);
        INFO("unitctl ", join(args), "\nstderr: ", r.err);
        REQUIRE(r.exit_code == 0);
        CHECK(r.err == "");
        return r.out;
    }

    static std::string join(const Args& args) {
        std::string text;
        for (const auto& a : args) text += (text.empty() ? "" : " ") + a;
        return text;
    }

private:
    TempDir dir_;
    std::string binary_;
    std::string db_;
};

// A failure: the status, nothing on stdout, exactly "unitctl: MESSAGE\n".
void expect_failure(const CommandResult& r, int status, const std::string& message) {
    CHECK(r.exit_code == status);
    CHECK(r.out == "");
    CHECK(r.err == "unitctl: " + message + "\n");
}

// One stderr line with the prefix, whatever its text (for libunit messages
// that carry details such as an SQLite error).
void expect_one_error_line(const CommandResult& r, int status) {
    CHECK(r.exit_code == status);
    CHECK(r.err.rfind("unitctl: ", 0) == 0);
    CHECK(r.err.find('\n') == r.err.size() - 1);
}

// What check says about populate()'s domains, which have no postmaster@.
const std::string no_postmasters =
    "warning: domain my.com: no postmaster@my.com (no mailbox, alias or catch-all)\n"
    "warning: domain other.org: no postmaster@other.org (no mailbox, alias or catch-all)\n";

// Two served domains, two units (one smtp, one lmtp on a port).
void populate(const Ctl& ctl) {
    ctl.ok({"init"});
    ctl.ok({"domain", "add", "my.com"});
    ctl.ok({"domain", "add", "other.org"});
    ctl.ok({"unit", "add", "unit12", "--nexthop", "[unit12.my.com]"});
    ctl.ok({"unit", "add", "unit13", "--nexthop", "[10.0.0.12]:2525", "--transport", "lmtp"});
}

// The lines of resolve's output before "trace:", without the generation
// (every write bumps it; tests compare it separately).
std::string resolution_fields(const std::string& out) {
    std::string fields;
    std::size_t start = 0;
    while (start < out.size()) {
        const auto end = out.find('\n', start);
        const auto line = out.substr(start, end - start + 1);
        if (line == "trace:\n") break;
        if (line.rfind("generation: ", 0) != 0) fields += line;
        start = end + 1;
    }
    return fields;
}

std::string csv_backup() {
    return "kind,address,value,state\n"
           "domain,my.com,,\n"
           "domain,other.org,,\n"
           "unit,unit12,smtp:[unit12.my.com],active\n"
           "unit,unit13,lmtp:[10.0.0.12]:2525,draining\n"
           "unit,unit14,smtp:[unit14.my.com],down\n"
           "mailbox,ann@my.com,unit12,active\n"
           "mailbox,bob@my.com,unit12,moving:unit13\n"
           "mailbox,cat@my.com,unit13,suspended\n"
           "mailbox,dan@other.org,unit14,disabled\n"
           "alias,@other.org,dan@other.org,\n"
           "alias,sales@my.com,Boss@example.org,\n"
           "alias,sales@my.com,ann@my.com,\n"
           "end,,12,\n";
}

}  // namespace

TEST_CASE("--version and --help") {
    Ctl ctl;
    auto r = ctl.raw({"--version"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "unitctl " UNIT_TEST_VERSION "\n");
    CHECK(r.err == "");

    r = ctl.raw({"--help"});
    CHECK(r.exit_code == 0);
    CHECK(r.err == "");
    for (const char* synopsis : {"init",
                                 "domain add DOMAIN",
                                 "domain rm DOMAIN",
                                 "domain list",
                                 "unit add NAME --nexthop NH [--transport T]",
                                 "unit set NAME [--state active|draining|down] [--nexthop NH] [--transport T]",
                                 "unit rm NAME",
                                 "unit list",
                                 "mailbox add ADDRESS --unit NAME",
                                 "mailbox set ADDRESS --state active|suspended|disabled",
                                 "mailbox rm ADDRESS",
                                 "mailbox show ADDRESS",
                                 "mailbox list [--unit NAME]",
                                 "move begin [ADDRESS...] --to UNIT [--file FILE|--from-unit UNIT [--limit N]] [-v]",
                                 "move finish [ADDRESS...] [--file FILE|--from-unit UNIT [--limit N]] [-v]",
                                 "move abort [ADDRESS...]",
                                 "alias add ADDRESS TARGET...",
                                 "alias rm ADDRESS [TARGET]",
                                 "alias list",
                                 "import FILE",
                                 "export",
                                 "check",
                                 "publish OUT",
                                 "resolve ADDRESS",
                                 "--db",
                                 "--config"}) {
        INFO(synopsis);
        CHECK(r.out.find(synopsis) != std::string::npos);
    }

    r = ctl.raw({"unit", "add", "--help"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("unit add NAME --nexthop NH [--transport T]") != std::string::npos);
    CHECK(r.out.find("--transport") != std::string::npos);

    // resolve's options are configuration keys: their help and defaults
    // come from the key table.
    r = ctl.raw({"resolve", "--help"});
    CHECK(r.exit_code == 0);
    for (const char* option : {"--recipient-delimiter CHARS", "--fold-local-case yes|no", "--reject-max-age DURATION",
                               "--max-replica-age DURATION", "--json", "(default: yes)", "(default: 1d)"}) {
        INFO(option);
        CHECK(r.out.find(option) != std::string::npos);
    }
}

TEST_CASE("init and domains") {
    Ctl ctl;
    expect_failure(ctl.run({"domain", "list"}), 1,
                   ctl.db() + ": No such file or directory (create it with unitctl init)");
    CHECK(!std::filesystem::exists(ctl.db()));

    CHECK(ctl.ok({"init"}) == "");
    CHECK(ctl.ok({"init"}) == "");  // an up-to-date database is left as it is
    CHECK(ctl.ok({"domain", "list"}) == "");

    CHECK(ctl.ok({"domain", "add", "Other.ORG."}) == "");
    ctl.ok({"domain", "add", "my.com"});
    CHECK(ctl.ok({"domain", "list"}) == "my.com\nother.org\n");
    expect_failure(ctl.run({"domain", "add", "my.com"}), 1, "domain my.com: already served");

    ctl.ok({"unit", "add", "unit12", "--nexthop", "[unit12.my.com]"});
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    expect_failure(ctl.run({"domain", "rm", "my.com"}), 1,
                   "domain my.com: still used by 1 mailbox(es) and 0 alias(es)");
    expect_failure(ctl.run({"domain", "rm", "nowhere.net"}), 1, "domain nowhere.net: not served");

    CHECK(ctl.ok({"domain", "rm", "other.org"}) == "");
    CHECK(ctl.ok({"domain", "list"}) == "my.com\n");
}

TEST_CASE("units") {
    Ctl ctl;
    populate(ctl);
    CHECK(ctl.ok({"unit", "list"}) ==
          "unit12\tsmtp:[unit12.my.com]\tactive\t0\n"
          "unit13\tlmtp:[10.0.0.12]:2525\tactive\t0\n");

    // Options may come before the operand.
    CHECK(ctl.ok({"unit", "add", "--nexthop", "[unit11.my.com]", "unit11"}) == "");
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    ctl.ok({"mailbox", "add", "bob@my.com", "--unit", "unit12"});
    CHECK(ctl.ok({"unit", "set", "unit12", "--state", "draining"}) == "");
    CHECK(ctl.ok({"unit", "set", "unit11", "--state", "down", "--transport", "lmtp", "--nexthop", "[10.0.0.11]:24"}) ==
          "");
    CHECK(ctl.ok({"unit", "list"}) ==
          "unit11\tlmtp:[10.0.0.11]:24\tdown\t0\n"
          "unit12\tsmtp:[unit12.my.com]\tdraining\t2\n"
          "unit13\tlmtp:[10.0.0.12]:2525\tactive\t0\n");

    expect_failure(ctl.run({"unit", "add", "unit12", "--nexthop", "[x.my.com]"}), 1, "unit unit12: already exists");
    expect_failure(ctl.run({"unit", "set", "unit99", "--state", "down"}), 1, "unit unit99: no such unit");
    expect_failure(ctl.run({"unit", "rm", "unit99"}), 1, "unit unit99: no such unit");
    expect_failure(ctl.run({"unit", "rm", "unit12"}), 1, "unit unit12: still has 2 mailbox(es)");
    expect_failure(ctl.run({"mailbox", "add", "cat@my.com", "--unit", "unit12"}), 1,
                   "unit unit12 is draining: it takes no new mailboxes");

    CHECK(ctl.ok({"unit", "rm", "unit11"}) == "");
    CHECK(ctl.ok({"unit", "list"}) ==
          "unit12\tsmtp:[unit12.my.com]\tdraining\t2\n"
          "unit13\tlmtp:[10.0.0.12]:2525\tactive\t0\n");
}

TEST_CASE("mailboxes") {
    Ctl ctl;
    populate(ctl);
    CHECK(ctl.ok({"mailbox", "add", "Ann@My.COM", "--unit", "unit12"}) == "");
    ctl.ok({"mailbox", "add", "--unit", "unit13", "bob@other.org"});
    ctl.ok({"mailbox", "add", "cat@my.com", "--unit", "unit13"});
    CHECK(ctl.ok({"mailbox", "show", "ann@my.com"}) == "address: ann@my.com\nunit: unit12\nstate: active\n");

    CHECK(ctl.ok({"mailbox", "set", "ann@my.com", "--state", "suspended"}) == "");
    CHECK(ctl.ok({"mailbox", "set", "cat@my.com", "--state", "disabled"}) == "");
    CHECK(ctl.ok({"mailbox", "show", "ANN@my.com"}) == "address: ann@my.com\nunit: unit12\nstate: suspended\n");
    CHECK(ctl.ok({"mailbox", "list"}) ==
          "ann@my.com\tunit12\tsuspended\n"
          "bob@other.org\tunit13\tactive\n"
          "cat@my.com\tunit13\tdisabled\n");
    CHECK(ctl.ok({"mailbox", "list", "--unit", "unit13"}) ==
          "bob@other.org\tunit13\tactive\n"
          "cat@my.com\tunit13\tdisabled\n");
    CHECK(ctl.ok({"mailbox", "set", "ann@my.com", "--state", "active"}) == "");

    expect_failure(ctl.run({"mailbox", "add", "ann@my.com", "--unit", "unit13"}), 1,
                   "mailbox ann@my.com: already exists on unit unit12");
    expect_failure(ctl.run({"mailbox", "add", "dan@my.com", "--unit", "unit99"}), 1, "unit unit99: no such unit");
    expect_failure(ctl.run({"mailbox", "add", "dan@elsewhere.net", "--unit", "unit12"}), 1,
                   "domain elsewhere.net is not served");
    expect_failure(ctl.run({"mailbox", "show", "dan@my.com"}), 1, "mailbox dan@my.com: no such mailbox");
    expect_failure(ctl.run({"mailbox", "set", "dan@my.com", "--state", "disabled"}), 1,
                   "mailbox dan@my.com: no such mailbox");
    expect_one_error_line(ctl.run({"mailbox", "add", "no-at-sign", "--unit", "unit12"}), 1);

    CHECK(ctl.ok({"mailbox", "rm", "cat@my.com"}) == "");
    expect_failure(ctl.run({"mailbox", "rm", "cat@my.com"}), 1, "mailbox cat@my.com: no such mailbox");
    CHECK(ctl.ok({"mailbox", "list"}) == "ann@my.com\tunit12\tactive\nbob@other.org\tunit13\tactive\n");
}

TEST_CASE("an operand after -- may start with a dash") {
    Ctl ctl;
    populate(ctl);
    CHECK(ctl.ok({"mailbox", "add", "--unit", "unit12", "--", "-dash@my.com"}) == "");
    CHECK(ctl.ok({"mailbox", "show", "--", "-dash@my.com"}) == "address: -dash@my.com\nunit: unit12\nstate: active\n");
}

TEST_CASE("moves") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});

    CHECK(ctl.ok({"move", "begin", "ann@my.com", "--to", "unit13"}) ==
          "moves begun 1 (held 1, direct 0), unchanged 0\n");
    CHECK(ctl.ok({"mailbox", "show", "ann@my.com"}) ==
          "address: ann@my.com\nunit: unit12\nstate: moving\nmoving_to: unit13\n");
    CHECK(ctl.ok({"mailbox", "list"}) == "ann@my.com\tunit12\tmoving:unit13\n");
    // Idempotent: a second run changes nothing.
    CHECK(ctl.ok({"move", "begin", "ann@my.com", "--to", "unit13"}) ==
          "moves begun 0 (held 0, direct 0), unchanged 1\n");
    expect_failure(ctl.run({"mailbox", "set", "ann@my.com", "--state", "suspended"}), 1,
                   "mailbox ann@my.com: moving to unit13: finish or abort the move first");

    CHECK(ctl.ok({"move", "finish", "ann@my.com"}) == "moves finished 1\n");
    CHECK(ctl.ok({"mailbox", "show", "ann@my.com"}) == "address: ann@my.com\nunit: unit13\nstate: active\n");
    CHECK(ctl.ok({"unit", "list"}) ==
          "unit12\tsmtp:[unit12.my.com]\tactive\t0\n"
          "unit13\tlmtp:[10.0.0.12]:2525\tactive\t1\n");

    CHECK(ctl.ok({"move", "begin", "ann@my.com", "--to", "unit13"}) ==
          "moves begun 0 (held 0, direct 0), unchanged 1\n");  // already there
    expect_failure(ctl.run({"move", "begin", "ann@my.com", "--to", "unit99"}), 1, "unit unit99: no such unit");
    expect_failure(ctl.run({"move", "begin", "zed@my.com", "--to", "unit12"}), 1,
                   "mailbox zed@my.com: no such mailbox");
    expect_failure(ctl.run({"move", "finish", "ann@my.com"}), 1, "mailbox ann@my.com: not moving");
    expect_failure(ctl.run({"move", "abort", "ann@my.com"}), 1, "mailbox ann@my.com: not moving");

    ctl.ok({"move", "begin", "ann@my.com", "--to", "unit12"});
    CHECK(ctl.ok({"move", "abort", "ann@my.com"}) == "moves aborted 1\n");
    CHECK(ctl.ok({"mailbox", "show", "ann@my.com"}) == "address: ann@my.com\nunit: unit13\nstate: active\n");
}

TEST_CASE("bulk moves: addresses, a file, stdin, a unit in slices; unit rm after an evacuation") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"unit", "add", "unit14", "--nexthop", "[unit14.my.com]"});
    for (const char* a : {"ann@my.com", "bob@my.com", "cat@my.com", "dan@my.com", "eve@my.com", "fay@my.com"})
        ctl.ok({"mailbox", "add", a, "--unit", "unit12"});
    ctl.ok({"mailbox", "set", "fay@my.com", "--state", "suspended"});

    CHECK(ctl.ok({"move", "begin", "ann@my.com", "Bob@my.com", "fay@my.com", "--to", "unit13", "-v"}) ==
          "ann@my.com: unit12 -> unit13 held\n"
          "bob@my.com: unit12 -> unit13 held\n"
          "fay@my.com: unit12 -> unit13 direct, suspended\n"
          "moves begun 3 (held 2, direct 1), unchanged 0\n");
    CHECK(ctl.ok({"mailbox", "show", "fay@my.com"}) == "address: fay@my.com\nunit: unit13\nstate: suspended\n");
    // All or nothing: one unknown address and nothing changes.
    expect_failure(ctl.run({"move", "abort", "ann@my.com", "zed@my.com"}), 1, "mailbox zed@my.com: no such mailbox");
    CHECK(ctl.ok({"move", "abort", "--file", "-"}, "# a comment\n\n  ann@my.com  \nbob@my.com\n") ==
          "moves aborted 2\n");
    const auto list = ctl.path("list.txt");
    write_file(list, "ann@my.com\n# cat stays\ndan@my.com\n");
    CHECK(ctl.ok({"move", "begin", "--file", list, "--to", "unit14"}) ==
          "moves begun 2 (held 2, direct 0), unchanged 0\n");
    CHECK(ctl.ok({"move", "finish", "--file", list}) == "moves finished 2\n");
    expect_failure(ctl.run({"move", "finish", "--file", ctl.path("missing.txt")}), 1,
                   ctl.path("missing.txt") + ": cannot open: No such file or directory");

    // An evacuation of unit12 (bob, cat, eve left) to unit13, two at a time.
    ctl.ok({"unit", "set", "unit12", "--state", "draining"});
    CHECK(ctl.ok({"move", "begin", "--from-unit", "unit12", "--to", "unit13", "--limit", "2", "-v"}) ==
          "bob@my.com: unit12 -> unit13 held\ncat@my.com: unit12 -> unit13 held\n"
          "moves begun 2 (held 2, direct 0), unchanged 0\n");
    CHECK(ctl.ok({"move", "begin", "--from-unit", "unit12", "--to", "unit13", "--limit", "2"}) ==
          "moves begun 1 (held 1, direct 0), unchanged 0\n");
    CHECK(ctl.ok({"move", "begin", "--from-unit", "unit12", "--to", "unit13", "--limit", "2"}) ==
          "moves begun 0 (held 0, direct 0), unchanged 0\n");
    expect_failure(ctl.run({"unit", "rm", "unit12"}), 1, "unit unit12: still has 3 mailbox(es)");
    CHECK(ctl.ok({"move", "finish", "--from-unit", "unit12"}) == "moves finished 3\n");
    CHECK(ctl.ok({"unit", "rm", "unit12"}) == "");
    CHECK(ctl.ok({"mailbox", "list"}) ==
          "ann@my.com\tunit14\tactive\nbob@my.com\tunit13\tactive\ncat@my.com\tunit13\tactive\n"
          "dan@my.com\tunit14\tactive\neve@my.com\tunit13\tactive\nfay@my.com\tunit13\tsuspended\n");
    expect_failure(ctl.run({"move", "begin", "--from-unit", "unit12", "--to", "unit13"}), 1,
                   "unit unit12: no such unit");
}

TEST_CASE("aliases") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    CHECK(ctl.ok({"alias", "add", "Sales@my.com", "ann@my.com", "Boss@Example.org"}) == "");
    CHECK(ctl.ok({"alias", "add", "@other.org", "ann@my.com"}) == "");
    CHECK(ctl.ok({"alias", "list"}) ==
          "@other.org\tann@my.com\n"
          "sales@my.com\tBoss@example.org\n"  // an external local part keeps its case
          "sales@my.com\tann@my.com\n");

    expect_failure(ctl.run({"alias", "add", "sales@my.com", "ann@my.com"}), 1,
                   "alias sales@my.com -> ann@my.com: already exists");
    expect_one_error_line(ctl.run({"alias", "add", "x@elsewhere.net", "ann@my.com"}), 1);
    expect_one_error_line(ctl.run({"alias", "rm", "nobody@my.com"}), 1);

    CHECK(ctl.ok({"alias", "rm", "sales@my.com", "Boss@Example.org"}) == "");
    CHECK(ctl.ok({"alias", "list"}) == "@other.org\tann@my.com\nsales@my.com\tann@my.com\n");
    CHECK(ctl.ok({"alias", "rm", "@other.org"}) == "");
    CHECK(ctl.ok({"alias", "list"}) == "sales@my.com\tann@my.com\n");
}

TEST_CASE("import from a file and from stdin, export") {
    Ctl ctl;
    ctl.ok({"init"});
    write_file(ctl.path("data.csv"),
               "kind,address,value,state\n"
               "domain,my.com,,\n"
               "unit,unit12,smtp:[unit12.my.com],active\n"
               "mailbox,ann@my.com,unit12,active\n"
               "mailbox,bob@my.com,unit12\n"
               "alias,sales@my.com,ann@my.com,\n");
    CHECK(ctl.ok({"import", ctl.path("data.csv")}) == "imported 1 domains, 1 units, 2 mailboxes, 1 aliases\n");
    CHECK(ctl.ok({"import", "-"}, "kind,address,value,state\ndomain,other.org,,\n") ==
          "imported 1 domains, 0 units, 0 mailboxes, 0 aliases\n");
    CHECK(ctl.ok({"export"}) ==
          "kind,address,value,state\n"
          "domain,my.com,,\n"
          "domain,other.org,,\n"
          "unit,unit12,smtp:[unit12.my.com],active\n"
          "mailbox,ann@my.com,unit12,active\n"
          "mailbox,bob@my.com,unit12,active\n"
          "alias,sales@my.com,ann@my.com,\n"
          "end,,6,\n");

    expect_failure(ctl.run({"import", ctl.path("missing.csv")}), 1,
                   ctl.path("missing.csv") + ": cannot open: No such file or directory");
    // stderr is no terminal here: no progress line, with or without --no-progress.
    CHECK(ctl.ok({"--no-progress", "import", "-"}, "kind,address,value,state\ndomain,third.org,,\n") ==
          "imported 1 domains, 0 units, 0 mailboxes, 0 aliases\n");
}

TEST_CASE("export then import into a fresh database gives the same CSV") {
    Ctl original;
    original.ok({"init"});
    original.ok({"import", "-"}, csv_backup());
    const auto exported = original.ok({"export"});
    CHECK(exported == csv_backup());

    Ctl copy;
    copy.ok({"init"});
    CHECK(copy.ok({"import", "-"}, exported) == "imported 2 domains, 3 units, 4 mailboxes, 3 aliases\n");
    CHECK(copy.ok({"export"}) == exported);
    CHECK(copy.ok({"mailbox", "show", "bob@my.com"}) ==
          "address: bob@my.com\nunit: unit12\nstate: moving\nmoving_to: unit13\n");
}

TEST_CASE("a bad CSV row fails the whole import with its line number") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    const auto before = ctl.ok({"export"});

    const auto file = ctl.path("bad.csv");
    write_file(file,
               "kind,address,value,state\n"
               "domain,third.net,,\n"
               "mailbox,bob@my.com,unit12,active\n"
               "mailbox,cat@my.com,unit99,active\n"
               "alias,sales@my.com,ann@my.com,\n");
    const auto r = ctl.run({"import", file});
    CHECK(r.exit_code == 1);
    CHECK(r.out == "");
    CHECK(r.err.rfind("unitctl: " + file + ":4: ", 0) == 0);
    CHECK(r.err.find('\n') == r.err.size() - 1);
    CHECK(ctl.ok({"export"}) == before);

    const auto from_stdin = ctl.run({"import", "-"}, "kind,address,value,state\nsnail,x,y,z\n");
    CHECK(from_stdin.exit_code == 1);
    CHECK(from_stdin.err.rfind("unitctl: stdin:2: ", 0) == 0);
    CHECK(ctl.ok({"export"}) == before);
}

TEST_CASE("publish writes a rollback-journal snapshot that resolve reads") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    const auto out = ctl.path("replica.db");
    const auto published = ctl.ok({"publish", out});
    const std::string prefix = "published " + out + " generation ";
    REQUIRE(published.rfind(prefix, 0) == 0);
    const auto generation = published.substr(prefix.size(), published.find(' ', prefix.size()) - prefix.size());
    CHECK(published.find(" at ") != std::string::npos);
    CHECK(published.back() == '\n');

    const auto header = read_file(out);
    REQUIRE(header.size() > 100);
    CHECK(header.rfind("SQLite format 3", 0) == 0);
    CHECK(static_cast<int>(header[18]) == 1);  // file format write version: 1 legacy (rollback), 2 WAL
    CHECK(static_cast<int>(header[19]) == 1);
    CHECK(static_cast<int>(read_file(ctl.db())[18]) == 2);  // the primary itself is in WAL mode

    const auto r = ctl.raw({"--db", out, "resolve", "Ann@My.com"});
    CHECK(r.exit_code == 0);
    CHECK(r.err == "");
    CHECK(r.out.find("generation: " + generation + "\n") != std::string::npos);
    CHECK(resolution_fields(r.out) ==
          "outcome: mailbox\ninput: Ann@My.com\naddress: ann@my.com\n"
          "unit: unit12\ntransport: smtp\nnexthop: [unit12.my.com]\nunit_state: active\nmailbox_state: active\n");

    // A replica is a plain database: check passes on it too (with the
    // warnings about the domains' missing postmaster@).
    CHECK(ctl.raw({"--db", out, "check"}).out == no_postmasters + "ok\n");

    expect_one_error_line(ctl.run({"publish", ctl.path("no/such/dir/replica.db")}), 1);
}

TEST_CASE("check") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    ctl.ok({"mailbox", "add", "b@my.com", "--unit", "unit12"});
    ctl.ok({"alias", "add", "postmaster@my.com", "ann@my.com"});
    ctl.ok({"alias", "add", "@other.org", "ann@my.com"});
    CHECK(ctl.ok({"check"}) == "ok\n");

    SUBCASE("an alias cycle is refused, and reported when written behind unitctl's back") {
        CHECK(ctl.ok({"alias", "add", "a@my.com", "b@my.com"}) == "");
        expect_failure(ctl.run({"alias", "add", "b@my.com", "a@my.com"}), 1,
                       "alias cycle: a@my.com -> b@my.com -> a@my.com");
        CHECK(ctl.ok({"check"}) == "ok\n");

        // As a provider's own provisioning system could write it.
        raw_sql(ctl.db(), "INSERT INTO aliases VALUES ('b@my.com', 'a@my.com')");
        auto r = ctl.run({"check"});
        CHECK(r.exit_code == 1);
        CHECK(r.out == "alias cycle: a@my.com -> b@my.com -> a@my.com\n");
        CHECK(r.err == "unitctl: check: 1 problem\n");

        raw_sql(ctl.db(), "INSERT INTO mailboxes (address, unit) VALUES ('orphan@my.com', 'unit99')");
        r = ctl.run({"check"});
        CHECK(r.exit_code == 1);
        CHECK(r.out.find("alias cycle: a@my.com -> b@my.com -> a@my.com\n") != std::string::npos);
        CHECK(r.out.find("mailbox orphan@my.com: on unknown unit unit99\n") != std::string::npos);
        CHECK(r.err == "unitctl: check: 2 problems\n");
    }

    SUBCASE("a damaged row") {
        // The same length, so the file stays well formed: the mailbox row
        // now disagrees with its index entry.
        auto bytes = read_file(ctl.db());
        const std::string row = "ann@my.comunit12active";
        const auto at = bytes.find(row);
        REQUIRE(at != std::string::npos);
        bytes.replace(at, row.size(), "ann@my.comunit19active");
        write_file(ctl.db(), bytes);
        const auto r = ctl.run({"check"});
        CHECK(r.exit_code == 1);
        CHECK(r.out == "integrity: row 1 missing from index mailboxes_by_unit\n");
        CHECK(r.err == "unitctl: check: 1 problem\n");
    }

    SUBCASE("damaged pages") {
        auto bytes = read_file(ctl.db());
        REQUIRE(bytes.size() >= 3 * 4096);
        for (std::size_t i = 4096; i < 3 * 4096; ++i) bytes[i] = static_cast<char>(0xA5);
        write_file(ctl.db(), bytes);
        expect_failure(ctl.run({"check"}), 1, "database: database disk image is malformed");
    }

    SUBCASE("not a database") {
        write_file(ctl.db(), std::string(8192, 'x'));
        expect_one_error_line(ctl.run({"check"}), 1);
    }
}

TEST_CASE("resolve") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    ctl.ok({"mailbox", "add", "bob@my.com", "--unit", "unit12"});
    ctl.ok({"mailbox", "add", "cat@my.com", "--unit", "unit12"});
    ctl.ok({"mailbox", "set", "cat@my.com", "--state", "disabled"});
    ctl.ok({"move", "begin", "bob@my.com", "--to", "unit13"});
    ctl.ok({"alias", "add", "sales@my.com", "ann@my.com", "bob@my.com", "Boss@Example.org"});

    SUBCASE("a mailbox, with an extension") {
        const auto r = ctl.run({"resolve", "ann+news@my.com", "--recipient-delimiter", "+"});
        CHECK(r.exit_code == 0);
        CHECK(r.err == "");
        CHECK(resolution_fields(r.out) ==
              "outcome: mailbox\ninput: ann+news@my.com\naddress: ann@my.com\n"
              "unit: unit12\ntransport: smtp\nnexthop: [unit12.my.com]\nunit_state: active\nmailbox_state: active\n");
        CHECK(r.out.find("trace:\n  ") != std::string::npos);
    }
    SUBCASE("a moving mailbox") {
        const auto r = ctl.run({"resolve", "bob@my.com"});
        CHECK(r.exit_code == 0);
        CHECK(resolution_fields(r.out) ==
              "outcome: mailbox\ninput: bob@my.com\naddress: bob@my.com\n"
              "unit: unit12\ntransport: smtp\nnexthop: [unit12.my.com]\nunit_state: active\nmailbox_state: moving\n"
              "moving_to: unit13\n");
    }
    SUBCASE("an alias") {
        const auto r = ctl.run({"resolve", "sales@my.com"});
        CHECK(r.exit_code == 0);
        CHECK(resolution_fields(r.out) ==
              "outcome: alias\ninput: sales@my.com\naddress: sales@my.com\n"
              "target: Boss@example.org external\n"
              "target: ann@my.com mailbox unit12\n"
              "target: bob@my.com mailbox unit12\n");
    }
    SUBCASE("disabled, unknown, foreign") {
        auto r = ctl.run({"resolve", "cat@my.com"});
        CHECK(r.exit_code == 0);
        CHECK(r.out.rfind("outcome: disabled\n", 0) == 0);
        CHECK(r.out.find("mailbox_state: disabled\n") != std::string::npos);
        r = ctl.run({"resolve", "nobody@my.com"});
        CHECK(r.exit_code == 0);
        CHECK(r.out.rfind("outcome: unknown\n", 0) == 0);
        r = ctl.run({"resolve", "someone@gmail.com"});
        CHECK(r.exit_code == 0);
        CHECK(r.out.rfind("outcome: foreign\n", 0) == 0);
    }
    SUBCASE("without the delimiter the extension is part of the address") {
        const auto r = ctl.run({"resolve", "ann+news@my.com"});
        CHECK(r.exit_code == 0);
        CHECK(r.out.rfind("outcome: unknown\n", 0) == 0);
    }
    SUBCASE("a malformed address exits 1") {
        const auto r = ctl.run({"resolve", "no-at-sign"});
        CHECK(r.exit_code == 1);
        CHECK(r.out.rfind("outcome: malformed\n", 0) == 0);
        CHECK(r.err.rfind("unitctl: resolve: no-at-sign: malformed: ", 0) == 0);
        CHECK(r.err.find('\n') == r.err.size() - 1);
    }
    SUBCASE("a missing database is a tempfail, exit 1") {
        const auto r = ctl.raw({"--db", ctl.path("missing.db"), "resolve", "ann@my.com"});
        CHECK(r.exit_code == 1);
        CHECK(r.out.rfind("outcome: tempfail\n", 0) == 0);
        CHECK(r.out.find("generation: -1\n") != std::string::npos);
        CHECK(r.err.rfind("unitctl: resolve: ann@my.com: tempfail: ", 0) == 0);
        CHECK(r.err.find('\n') == r.err.size() - 1);
    }
}

TEST_CASE("usage errors exit 2 and touch no database") {
    Ctl ctl;
    expect_failure(ctl.run({}), 2, "missing command (see unitctl --help)");
    expect_failure(ctl.run({"frobnicate"}), 2, "unknown command 'frobnicate' (see unitctl --help)");
    expect_failure(ctl.run({"domain"}), 2, "domain: missing subcommand (add, rm or list)");
    expect_failure(ctl.run({"domain", "purge"}), 2, "domain: unknown subcommand 'purge' (add, rm or list)");
    expect_failure(ctl.run({"domain", "add"}), 2, "domain add: missing DOMAIN (usage: unitctl domain add DOMAIN)");
    expect_failure(ctl.run({"domain", "add", "a.com", "b.com"}), 2,
                   "domain add: unexpected argument 'b.com' (usage: unitctl domain add DOMAIN)");
    expect_failure(ctl.run({"domain", "list", "extra"}), 2,
                   "domain list: unexpected argument 'extra' (usage: unitctl domain list [--json])");
    expect_failure(ctl.run({"init", "now"}), 2, "init: unexpected argument 'now' (usage: unitctl init)");
    expect_failure(ctl.run({"unit", "add", "unit12"}), 2, "unit add: the option '--nexthop' is required but missing");
    expect_failure(ctl.run({"unit", "add", "unit12", "--nexthop"}), 2,
                   "unit add: the required argument for option '--nexthop' is missing");
    expect_failure(ctl.run({"unit", "list", "--bogus"}), 2, "unit list: unrecognised option '--bogus'");
    expect_failure(ctl.run({"--bogus", "unit", "list"}), 2, "unrecognised option '--bogus'");
    expect_failure(ctl.run({"unit", "set", "unit12", "--state", "sideways"}), 2,
                   "unit set: bad --state 'sideways' (expected active, draining or down)");
    expect_failure(ctl.run({"unit", "set", "unit12"}), 2,
                   "unit set: nothing to change (give --state, --nexthop or --transport)");
    expect_failure(ctl.run({"mailbox", "set", "ann@my.com", "--state", "moving"}), 2,
                   "mailbox set: bad --state 'moving' (expected active, suspended or disabled)");
    expect_failure(ctl.run({"mailbox", "set", "ann@my.com"}), 2,
                   "mailbox set: the option '--state' is required but missing");
    expect_failure(ctl.run({"mailbox", "add", "ann@my.com"}), 2,
                   "mailbox add: the option '--unit' is required but missing");
    expect_failure(ctl.run({"move", "begin", "ann@my.com"}), 2,
                   "move begin: the option '--to' is required but missing");
    expect_failure(ctl.run({"move", "finish"}), 2,
                   "move finish: give one of ADDRESS..., --file FILE or --from-unit UNIT");
    expect_failure(ctl.run({"move", "abort", "a@my.com", "--from-unit", "unit12"}), 2,
                   "move abort: give one of ADDRESS..., --file FILE or --from-unit UNIT");
    expect_failure(ctl.run({"move", "begin", "a@my.com", "--to", "unit12", "--limit", "3"}), 2,
                   "move begin: --limit needs --from-unit");
    expect_failure(ctl.run({"move", "begin", "--from-unit", "unit13", "--to", "unit12", "--limit", "0"}), 2,
                   "move begin: --limit must be at least 1");
    expect_failure(ctl.run({"alias", "add", "sales@my.com"}), 2,
                   "alias add: missing TARGET (usage: unitctl alias add ADDRESS TARGET...)");
    expect_failure(ctl.run({"alias", "rm", "a@my.com", "b@my.com", "c@my.com"}), 2,
                   "alias rm: unexpected argument 'c@my.com' (usage: unitctl alias rm ADDRESS [TARGET])");
    expect_failure(ctl.run({"import"}), 2, "import: missing FILE (usage: unitctl import FILE)");
    expect_failure(ctl.run({"publish"}), 2,
                   "publish: missing OUT (usage: unitctl publish OUT [--rollback|--takeover] [--max-removed N|P%] "
                   "[--force] [--mode OCTAL])");
    expect_failure(ctl.run({"resolve", "a@my.com", "--reject-max-age", "soon"}), 2,
                   "resolve: --reject-max-age: bad duration 'soon' (expected N[s|m|h|d|w])");
    expect_failure(ctl.run({"resolve", "a@my.com", "--max-replica-age", "5y"}), 2,
                   "resolve: --max-replica-age: bad duration '5y' (expected N[s|m|h|d|w])");
    expect_failure(ctl.run({"resolve", "a@my.com", "--fold-local-case", "maybe"}), 2,
                   "resolve: --fold-local-case: bad boolean 'maybe' (expected yes or no)");
    expect_failure(ctl.raw({"domain", "list", "--db"}), 2, "the required argument for option '--db' is missing");
    CHECK(!std::filesystem::exists(ctl.db()));
}

TEST_CASE("--config") {
    Ctl ctl;
    const auto config = ctl.path("unitctl.conf");
    write_file(config, "# unitctl settings\n\n  db = " + ctl.db() + "  \nrecipient_delimiter = +\n");
    auto r = ctl.raw({"--config", config, "init"});
    CHECK(r.exit_code == 0);
    CHECK(r.err == "");
    CHECK(std::filesystem::exists(ctl.db()));
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    CHECK(ctl.raw({"--config", config, "domain", "list"}).out == "my.com\nother.org\n");

    SUBCASE("the command line wins") {
        const auto other = ctl.path("other.db");
        expect_failure(ctl.raw({"--config", config, "--db", other, "domain", "list"}), 1,
                       other + ": No such file or directory (create it with unitctl init)");
        expect_failure(ctl.raw({"domain", "list", "--db", other, "--config", config}), 1,
                       other + ": No such file or directory (create it with unitctl init)");
    }
    SUBCASE("resolve settings") {
        r = ctl.raw({"--config", config, "resolve", "ann+news@my.com"});
        CHECK(r.exit_code == 0);
        CHECK(r.out.rfind("outcome: mailbox\n", 0) == 0);
        r = ctl.raw({"--config", config, "resolve", "ann+news@my.com", "--recipient-delimiter", "-"});
        CHECK(r.exit_code == 0);
        CHECK(r.out.rfind("outcome: unknown\n", 0) == 0);

        write_file(config, "db=" + ctl.db() + "\nfold_local_case = no\nreject_max_age = 2d\nmax_replica_age = 0\n");
        r = ctl.raw({"--config", config, "resolve", "ANN@my.com"});
        CHECK(r.exit_code == 0);
        CHECK(r.out.rfind("outcome: unknown\n", 0) == 0);
        r = ctl.raw({"--config", config, "resolve", "ANN@my.com", "--fold-local-case", "yes"});
        CHECK(r.out.rfind("outcome: mailbox\n", 0) == 0);
    }
    SUBCASE("an unknown key") {
        write_file(config, "db = " + ctl.db() + "\ncolour = blue\n");
        expect_failure(ctl.raw({"--config", config, "domain", "list"}), 2, config + ":2: unknown key 'colour'");
    }
    SUBCASE("bad lines and values") {
        write_file(config, "db " + ctl.db() + "\n");
        expect_failure(ctl.raw({"--config", config, "domain", "list"}), 2, config + ":1: expected 'key = value'");
        write_file(config, "reject_max_age = soon\n");
        expect_failure(ctl.raw({"--config", config, "domain", "list"}), 2,
                       config + ":1: reject_max_age: bad duration 'soon' (expected N[s|m|h|d|w])");
        write_file(config, "fold_local_case = perhaps\n");
        expect_failure(ctl.raw({"--config", config, "domain", "list"}), 2,
                       config + ":1: fold_local_case: bad boolean 'perhaps' (expected yes or no)");
        expect_failure(ctl.raw({"--config", ctl.path("absent.conf"), "domain", "list"}), 2,
                       ctl.path("absent.conf") + ": cannot open: No such file or directory");
    }
}

// ------------------------------------------------------------ issue 12

TEST_CASE("the default --db is the primary's path, never the replica's") {
    Ctl ctl;
    const auto help = ctl.raw({"--help"});
    CHECK(help.out.find("(default /var/lib/unitpolicy/primary.db)") != std::string::npos);
    CHECK(help.out.find("units.db") == std::string::npos);
    if (std::filesystem::exists("/var/lib/unitpolicy/primary.db")) return;  // a real installation
    expect_failure(ctl.raw({"domain", "list"}), 1,
                   "/var/lib/unitpolicy/primary.db: No such file or directory (create it with unitctl init)");
}

TEST_CASE("unitctl refuses to write to a published snapshot, and reads it") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    const auto out = ctl.path("units.db");
    ctl.ok({"publish", out});
    const auto before = read_file(out);
    const std::string refusal_start = "unitctl: " + out + ": a published snapshot (published_at ";
    const std::string refusal_end =
        "): unitctl writes the primary, not a copy (--db /var/lib/unitpolicy/primary.db by "
        "default)\n";
    for (const Args& args : std::vector<Args>{{"init"},
                                              {"domain", "add", "new.org"},
                                              {"domain", "rm", "other.org"},
                                              {"unit", "add", "unit20", "--nexthop", "[unit20.my.com]"},
                                              {"unit", "set", "unit12", "--state", "down"},
                                              {"unit", "rm", "unit13"},
                                              {"mailbox", "add", "bob@my.com", "--unit", "unit12"},
                                              {"mailbox", "set", "ann@my.com", "--state", "disabled"},
                                              {"mailbox", "rm", "ann@my.com"},
                                              {"move", "begin", "ann@my.com", "--to", "unit13"},
                                              {"move", "finish", "ann@my.com"},
                                              {"move", "abort", "ann@my.com"},
                                              {"alias", "add", "sales@my.com", "ann@my.com"},
                                              {"alias", "rm", "sales@my.com"},
                                              {"import", "-"},
                                              {"publish", ctl.path("again.db")}}) {
        Args full{"--db", out};
        full.insert(full.end(), args.begin(), args.end());
        const auto r = ctl.raw(full, "kind,address,value,state\ndomain,new.org,,\n");
        INFO(Ctl::join(args));
        CHECK(r.exit_code == 1);
        CHECK(r.out == "");
        CHECK(r.err.rfind(refusal_start, 0) == 0);
        CHECK(r.err.size() > refusal_end.size());
        CHECK(r.err.substr(r.err.size() - refusal_end.size()) == refusal_end);
    }
    CHECK(read_file(out) == before);
    CHECK(!std::filesystem::exists(ctl.path("again.db")));
    for (const Args& args : std::vector<Args>{{"domain", "list"},
                                              {"unit", "list"},
                                              {"mailbox", "list"},
                                              {"mailbox", "show", "ann@my.com"},
                                              {"alias", "list"},
                                              {"export"},
                                              {"resolve", "ann@my.com"}}) {
        Args full{"--db", out};
        full.insert(full.end(), args.begin(), args.end());
        const auto r = ctl.raw(full);
        INFO(Ctl::join(args));
        CHECK(r.exit_code == 0);
        CHECK(r.err == "");
    }
    CHECK(ctl.raw({"--db", out, "check"}).exit_code == 0);
    CHECK(read_file(out) == before);
}

TEST_CASE("publish: generation and identity guards, --rollback, --takeover") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    const auto out = ctl.path("units.db");
    ctl.ok({"publish", out});

    // Rebuilt from its own export: the same data, another primary.
    Ctl rebuilt;
    rebuilt.ok({"init"});
    rebuilt.ok({"import", "-"}, ctl.ok({"export"}));
    auto r = rebuilt.run({"publish", out});
    CHECK(r.exit_code == 1);
    CHECK(r.out == "");
    CHECK(r.err.find("holds a snapshot of another primary (primary_id ") != std::string::npos);
    CHECK(r.err.find("--takeover publishes it deliberately") != std::string::npos);
    CHECK(rebuilt.ok({"publish", out, "--takeover"}).rfind("published " + out, 0) == 0);

    // The old primary is now foreign to OUT; with a lower generation too.
    r = ctl.run({"publish", out});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("another primary") != std::string::npos);
    rebuilt.ok({"mailbox", "add", "bob@my.com", "--unit", "unit12"});
    rebuilt.ok({"publish", out});
    raw_sql(rebuilt.db(), "UPDATE meta SET value = '2' WHERE key = 'generation'");
    r = rebuilt.run({"publish", out});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("newer than generation 2: refusing to go back (--rollback publishes it deliberately)") !=
          std::string::npos);
    CHECK(rebuilt.ok({"publish", out, "--rollback"}).find(" generation 2 at ") != std::string::npos);

    expect_failure(rebuilt.run({"publish", out, "--rollback", "--takeover"}), 2,
                   "publish: --rollback and --takeover exclude each other");
    expect_failure(rebuilt.run({"publish", out, "--max-removed", "ten"}), 2,
                   "publish: bad --max-removed 'ten' (expected a count N or a percentage P%)");
    expect_failure(rebuilt.run({"publish", out, "--max-removed", "120%"}), 2,
                   "publish: bad --max-removed '120%' (expected a count N or a percentage P%)");
    expect_failure(rebuilt.run({"publish", out, "--mode", "0999"}), 2,
                   "publish: bad --mode '0999' (expected octal permissions such as 0644)");
}

TEST_CASE("publish: mass removal, --max-removed and --force") {
    Ctl ctl;
    populate(ctl);
    std::string csv = "kind,address,value,state\n";
    for (int i = 0; i < 600; ++i) csv += "mailbox,user" + std::to_string(1000 + i) + "@my.com,unit12,\n";
    ctl.ok({"import", "-"}, csv);
    const auto out = ctl.path("units.db");
    ctl.ok({"publish", out});
    raw_sql(ctl.db(), "DELETE FROM mailboxes WHERE address < 'user1510'");
    auto r = ctl.run({"publish", out});
    CHECK(r.exit_code == 1);
    CHECK(r.out == "");
    CHECK(r.err ==
          "unitctl: publish " + out +
              ": the snapshot removes 510 of the 600 mailboxes of the previous one, "
              "more than 500 (user1000@my.com, user1001@my.com, user1002@my.com, user1003@my.com, "
              "user1004@my.com, ...): refusing it (--max-removed raises the limit, --force publishes it anyway)\n");
    expect_one_error_line(ctl.run({"publish", out, "--max-removed", "80%"}), 1);
    ctl.ok({"publish", out, "--max-removed", "85%"});
    raw_sql(ctl.db(), "DELETE FROM mailboxes");
    expect_one_error_line(ctl.run({"publish", out, "--max-removed", "89"}), 1);
    ctl.ok({"publish", out, "--force"});
}

TEST_CASE("publish: OUT must be a snapshot or absent; the snapshot's mode") {
    Ctl ctl;
    populate(ctl);
    const auto fifo = ctl.path("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    expect_failure(ctl.run({"publish", fifo}), 1,
                   "publish " + fifo + ": " + fifo + ": a FIFO, not a regular file: refusing to replace it");
    expect_failure(ctl.run({"publish", "/dev/null", "--force"}), 1,
                   "publish /dev/null: /dev/null: a character device, not a regular file: refusing to replace it");
    expect_failure(ctl.run({"publish", ctl.db() + "-wal"}), 1,
                   "publish " + ctl.db() + "-wal: " + ctl.db() + "-wal is the primary database's -wal");
    write_file(ctl.path("notes.txt"), "notes\n");
    expect_one_error_line(ctl.run({"publish", ctl.path("notes.txt")}), 1);
    CHECK(read_file(ctl.path("notes.txt")) == "notes\n");

    const auto out = ctl.path("units.db");
    const auto r = run_command({"/bin/sh", "-c", "umask 077 && exec \"$0\" --db \"$1\" publish \"$2\"",
                                env_or_fail("UNITCTL"), ctl.db(), out});
    REQUIRE(r.exit_code == 0);
    struct stat st {};
    REQUIRE(::stat(out.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0644);
    ctl.ok({"publish", out, "--mode", "0640"});
    REQUIRE(::stat(out.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0640);
}

TEST_CASE("only well-formed values enter: transports, nexthops, alias targets") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    const auto before = ctl.ok({"export"});
    expect_failure(ctl.run({"unit", "add", "unit20", "--nexthop", "[u20.my.com]", "--transport", "error"}), 1,
                   "unit unit20: bad transport \"error\": Postfix's own special service, not a route to a unit");
    expect_failure(ctl.run({"unit", "add", "unit20", "--nexthop", "[u20.my.com]", "--transport", "unithold"}), 1,
                   "unit unit20: bad transport \"unithold\": the hold transport: mail routed through it is never "
                   "delivered");
    expect_failure(ctl.run({"unit", "add", "unit20", "--nexthop", "u20.my.com,evil"}), 1,
                   "unit unit20: bad nexthop \"u20.my.com,evil\": white space, a control character or a comma");
    expect_failure(ctl.run({"unit", "set", "unit12", "--nexthop", "[u12.my.com]\n"}), 1,
                   "unit unit12: bad nexthop \"[u12.my.com]\\x0a\": white space, a control character or a comma");
    expect_failure(ctl.run({"unit", "set", "unit12", "--transport", "discard"}), 1,
                   "unit unit12: bad transport \"discard\": Postfix's own special service, not a route to a unit");
    expect_one_error_line(ctl.run({"alias", "add", "sales@my.com", "a@x.org,b@y.org"}), 1);
    expect_one_error_line(ctl.run({"import", "-"}, "kind,address,value,state\nunit,unit20,discard:[u20.my.com],\n"), 1);
    expect_one_error_line(ctl.run({"import", "-"},
                                  "kind,address,value,state\nalias,sales@my.com,\"a@x.org,b@y.org\",\n"),
                          1);
    CHECK(ctl.ok({"export"}) == before);

    // hold_transport: the site's own name for the hold transport.
    const auto config = ctl.path("unitctl.conf");
    write_file(config, "hold_transport = parked\n");
    expect_failure(ctl.run({"--config", config, "unit", "add", "unit20", "--nexthop", "[u20.my.com]", "--transport",
                            "parked"}),
                   1,
                   "unit unit20: bad transport \"parked\": the hold transport: mail routed through it is never "
                   "delivered");
    ctl.ok({"--config", config, "unit", "add", "unit20", "--nexthop", "[u20.my.com]", "--transport", "unithold"});
    write_file(config, "max_alias_targets = 0\n");
    expect_failure(ctl.run({"--config", config, "check"}), 2,
                   config + ":1: max_alias_targets: bad number '0' (expected 1 to 1000000)");
}

TEST_CASE("alias add and import refuse a target that resolves to nothing") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    expect_failure(ctl.run({"alias", "add", "sales@my.com", "ann@my.com", "nobody@my.com"}), 1,
                   "alias sales@my.com -> nobody@my.com: nobody@my.com does not resolve (no mailbox, alias or "
                   "catch-all in its served domain)");
    expect_one_error_line(ctl.run({"alias", "add", "sales@my.com", "ann+news@my.com"}), 1);
    const auto config = ctl.path("unitctl.conf");
    write_file(config, "recipient_delimiter = +\n");
    ctl.ok({"--config", config, "alias", "add", "sales@my.com", "ann+news@my.com"});
    ctl.ok({"alias", "add", "@other.org", "ann@my.com"});
    ctl.ok({"alias", "add", "team@my.com", "anyone@other.org", "Boss@Example.org"});  // a catch-all, an external
    expect_one_error_line(ctl.run({"import", "-"}, "kind,address,value,state\nalias,x@my.com,y@my.com,\n"), 1);
    CHECK(ctl.ok({"import", "-"}, "kind,address,value,state\nalias,x@my.com,y@my.com,\nalias,y@my.com,ann@my.com,\n") ==
          "imported 0 domains, 0 units, 0 mailboxes, 2 aliases\n");
}

TEST_CASE("check reports dangling targets and bad values, warns of dead aliases and missing postmasters") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    ctl.ok({"mailbox", "add", "off@my.com", "--unit", "unit12"});
    ctl.ok({"mailbox", "set", "off@my.com", "--state", "disabled"});
    ctl.ok({"alias", "add", "retired@my.com", "off@my.com"});
    CHECK(ctl.ok({"check"}) ==
          "warning: alias retired@my.com: every target is disabled or unknown: mail to it is "
          "refused\n" +
              no_postmasters + "ok\n");
    raw_sql(ctl.db(),
            "INSERT INTO aliases VALUES ('sales@my.com', 'gone@my.com');"
            "UPDATE units SET transport = 'error' WHERE name = 'unit13'");
    const auto r = ctl.run({"check"});
    CHECK(r.exit_code == 1);
    CHECK(r.out ==
          "unit unit13: bad transport \"error\": Postfix's own special service, not a route to a unit\n"
          "alias sales@my.com -> gone@my.com: gone@my.com does not resolve (no mailbox, alias or catch-all in its "
          "served domain)\n"
          "warning: alias retired@my.com: every target is disabled or unknown: mail to it is refused\n"
          "warning: alias sales@my.com: every target is disabled or unknown: mail to it is refused\n" +
              no_postmasters);
    CHECK(r.err == "unitctl: check: 2 problems\n");

    // The work limit, from the configuration, as the daemons'.
    raw_sql(ctl.db(), "DELETE FROM aliases WHERE address = 'sales@my.com'; UPDATE units SET transport = 'smtp'");
    ctl.ok({"alias", "add", "big@my.com", "a@x.org", "b@x.org", "c@x.org"});
    const auto config = ctl.path("unitctl.conf");
    write_file(config, "max_alias_targets = 2\n");
    expect_failure(ctl.run({"--config", config, "alias", "add", "big2@my.com", "d@x.org", "e@x.org", "f@x.org"}), 1,
                   "alias big2@my.com: its expansion visits 3 alias rows, more than max_alias_targets 2");
    const auto limited = ctl.run({"--config", config, "check"});
    CHECK(limited.exit_code == 1);
    CHECK(limited.out.rfind("alias big@my.com: its expansion visits 3 alias rows, more than max_alias_targets 2\n",
                            0) == 0);
}

namespace {

// unitctl ARGS --json, which must succeed: its stdout, parsed.
JsonValue ok_json(const Ctl& ctl, Args args) {
    args.push_back("--json");
    const auto out = ctl.ok(args);
    INFO("unitctl ", Ctl::join(args), "\nstdout: ", out);
    REQUIRE(!out.empty());
    CHECK(out.back() == '\n');
    JsonValue value;
    REQUIRE_NOTHROW(value = parse_json(out));
    return value;
}

using Names = std::vector<std::string>;

}  // namespace

TEST_CASE("--json: listings are arrays of objects with the text's columns") {
    Ctl ctl;
    ctl.ok({"init"});
    ctl.ok({"import", "-"}, csv_backup());
    const std::string odd = "\"q\\\"u\\\\o\"@my.com";  // a quoted local part: "q\"u\\o"@my.com
    const std::string utf8 = "j\xc3\xbcrgen@my.com";
    ctl.ok({"mailbox", "add", odd, "--unit", "unit12"});
    ctl.ok({"mailbox", "add", utf8, "--unit", "unit12"});

    auto domains = ok_json(ctl, {"domain", "list"});
    REQUIRE(domains.array.size() == 2);
    CHECK(domains.array[0].names() == Names{"name"});
    CHECK(domains.array[1]["name"].string == "other.org");

    auto units = ok_json(ctl, {"unit", "list"});
    REQUIRE(units.array.size() == 3);
    CHECK(units.array[1].names() == Names{"name", "route", "transport", "nexthop", "state", "mailboxes"});
    CHECK(units.array[1]["name"].string == "unit13");
    CHECK(units.array[1]["route"].string == "lmtp:[10.0.0.12]:2525");
    CHECK(units.array[1]["transport"].string == "lmtp");
    CHECK(units.array[1]["nexthop"].string == "[10.0.0.12]:2525");
    CHECK(units.array[1]["state"].string == "draining");
    CHECK(units.array[1]["mailboxes"].kind == JsonValue::Kind::Number);
    CHECK(units.array[0]["mailboxes"].number == 4);

    auto mailboxes = ok_json(ctl, {"mailbox", "list"});
    REQUIRE(mailboxes.array.size() == 6);
    const auto& quoted = mailboxes.array[0];  // '"' sorts first
    CHECK(quoted.names() == Names{"address", "unit", "state", "moving_to"});
    CHECK(quoted["address"].string == odd);
    CHECK(quoted["moving_to"].is_null());
    CHECK(mailboxes.array[2]["address"].string == "bob@my.com");
    CHECK(mailboxes.array[2]["state"].string == "moving");
    CHECK(mailboxes.array[2]["moving_to"].string == "unit13");
    CHECK(mailboxes.array[5]["address"].string == utf8);
    CHECK(ok_json(ctl, {"mailbox", "list", "--unit", "unit14"}).array.size() == 1);
    CHECK(ctl.ok({"mailbox", "list", "--unit", "unit13", "--json"}).find("\"cat@my.com\"") != std::string::npos);

    auto bob = ok_json(ctl, {"mailbox", "show", "bob@my.com"});
    CHECK(bob.names() == Names{"address", "unit", "state", "moving_to"});
    CHECK(bob["unit"].string == "unit12");
    CHECK(bob["moving_to"].string == "unit13");

    auto aliases = ok_json(ctl, {"alias", "list"});
    REQUIRE(aliases.array.size() == 3);
    CHECK(aliases.array[1].names() == Names{"address", "target"});
    CHECK(aliases.array[1]["address"].string == "sales@my.com");
    CHECK(aliases.array[1]["target"].string == "Boss@example.org");

    // An empty listing is an empty array; failures keep their exit status
    // and stderr line, and print no JSON.
    CHECK(ctl.ok({"alias", "list", "--json"}, "") != "[]\n");
    Ctl empty;
    empty.ok({"init"});
    CHECK(empty.ok({"domain", "list", "--json"}) == "[]\n");
    CHECK(empty.ok({"mailbox", "list", "--json"}) == "[]\n");
    expect_failure(ctl.run({"mailbox", "show", "nobody@my.com", "--json"}), 1,
                   "mailbox nobody@my.com: no such mailbox");
    expect_failure(ctl.run({"export", "--json"}), 2, "export: unrecognised option '--json'");
}

TEST_CASE("--json: bytes the text would print raw stay valid JSON") {
    Ctl ctl;
    populate(ctl);
    // What unitctl refuses to store, written behind its back: a control
    // character, and bytes that are not UTF-8.
    raw_sql(ctl.db(),
            "INSERT INTO mailboxes (address, unit) VALUES ('tab' || char(9) || 'nl' || char(10) || "
            "'@my.com', 'unit12')");
    raw_sql(ctl.db(), "INSERT INTO mailboxes (address, unit) VALUES (CAST(X'78FF79406D792E636F6D' AS TEXT), 'unit12')");
    auto mailboxes = ok_json(ctl, {"mailbox", "list"});
    REQUIRE(mailboxes.array.size() == 2);
    CHECK(mailboxes.array[0]["address"].string == "tab\tnl\n@my.com");
    CHECK(mailboxes.array[1]["address"].string == "x\xef\xbf\xbdy@my.com");
}

TEST_CASE("--json: check and resolve, with their exit status") {
    Ctl ctl;
    populate(ctl);
    ctl.ok({"mailbox", "add", "ann@my.com", "--unit", "unit12"});
    ctl.ok({"mailbox", "add", "bob@my.com", "--unit", "unit12"});
    ctl.ok({"move", "begin", "bob@my.com", "--to", "unit13"});
    ctl.ok({"alias", "add", "sales@my.com", "ann@my.com", "Boss@Example.org"});

    auto check = ok_json(ctl, {"check"});
    CHECK(check.names() == Names{"ok", "problems", "warnings"});
    CHECK(check["ok"].boolean);
    CHECK(check["problems"].array.empty());
    REQUIRE(check["warnings"].array.size() == 2);
    CHECK(check["warnings"].array[0].string == "domain my.com: no postmaster@my.com (no mailbox, alias or catch-all)");

    auto bob = ok_json(ctl, {"resolve", "bob@my.com"});
    CHECK(bob.names() ==
          Names{"outcome", "input", "address", "generation", "destination", "targets", "reason", "trace"});
    CHECK(bob["outcome"].string == "mailbox");
    CHECK(bob["generation"].number > 0);
    CHECK(bob["destination"].names() ==
          Names{"unit", "transport", "nexthop", "unit_state", "mailbox_state", "moving_to"});
    CHECK(bob["destination"]["mailbox_state"].string == "moving");
    CHECK(bob["destination"]["moving_to"].string == "unit13");
    CHECK(bob["reason"].is_null());
    CHECK(!bob["trace"].array.empty());

    auto sales = ok_json(ctl, {"resolve", "sales@my.com"});
    CHECK(sales["outcome"].string == "alias");
    CHECK(sales["destination"].is_null());
    REQUIRE(sales["targets"].array.size() == 2);
    const auto& boss = sales["targets"].array[0];  // the targets by address: 'B' < 'a'
    const auto& ann = sales["targets"].array[1];
    CHECK(ann.names() == Names{"address", "kind", "unit"});
    CHECK(ann["address"].string == "ann@my.com");
    CHECK(ann["kind"].string == "mailbox");
    CHECK(ann["unit"].string == "unit12");
    CHECK(boss["address"].string == "Boss@example.org");
    CHECK(boss["kind"].string == "external");
    CHECK(boss["unit"].is_null());

    // Malformed: the JSON on stdout, the error line on stderr, exit 1.
    auto r = ctl.run({"resolve", "no-at-sign", "--json"});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "unitctl: resolve: no-at-sign: malformed: address: no @ in address\n");
    auto malformed = parse_json(r.out);
    CHECK(malformed["outcome"].string == "malformed");
    CHECK(malformed["address"].is_null());
    CHECK(malformed["reason"].string == "address: no @ in address");

    // Problems: the JSON, then exit 1.
    raw_sql(ctl.db(), "INSERT INTO mailboxes (address, unit) VALUES ('orphan@my.com', 'unit99')");
    r = ctl.run({"check", "--json"});
    CHECK(r.exit_code == 1);
    auto failed = parse_json(r.out);
    CHECK(!failed["ok"].boolean);
    CHECK(failed["problems"].array.size() >= 1);
}
