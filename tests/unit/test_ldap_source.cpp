// The LDAP source of `unitctl sync --ldap` against a real slapd: one
// throwaway server (tests/ldap/slapd.sh) with make_entries.py's 3000 users,
// started once for this program and stopped at its end.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "ctl/ldap_source.hpp"
#include "test_support.hpp"

using namespace unit;
using namespace unit::ctl;
using unit::test::TempDir;

namespace {

constexpr int users = 3000;
const std::string people = "ou=people,dc=example,dc=com";

// The server, started on first use.
class Slapd {
public:
    Slapd() : script_(test::env_or_fail("UNIT_SOURCE_ROOT") + "/tests/ldap/slapd.sh") {
        auto started = test::run_command({"/bin/bash", script_, "start", dir_.root()});
        REQUIRE_MESSAGE(started.exit_code == 0, started.err);
        auto loaded = test::run_command({"/bin/bash", script_, "load", dir_.root(), std::to_string(users)});
        REQUIRE_MESSAGE(loaded.exit_code == 0, loaded.err);
        uri_ = test::read_file(dir_.path("uri"));
        password_file_ = secret("password", "secret\n", 0600);
    }
    // After doctest's run: no REQUIRE here, a plain SIGTERM to slapd's pid.
    ~Slapd() {
        const pid_t pid = std::atoi(test::read_file(dir_.path("slapd.pid")).c_str());
        if (pid <= 0 || ::kill(pid, SIGTERM) != 0) return;
        for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) ::usleep(100'000);
    }

    const std::string& uri() const { return uri_; }
    const std::string& password_file() const { return password_file_; }

    // A file holding `text`, with `mode`.
    std::string secret(const std::string& name, const std::string& text, mode_t mode) const {
        const auto path = dir_.path(name);
        test::write_file(path, text);
        REQUIRE(::chmod(path.c_str(), mode) == 0);
        return path;
    }

private:
    TempDir dir_;
    std::string script_;
    std::string uri_;
    std::string password_file_;
};

Slapd& slapd() {
    static Slapd server;
    return server;
}

// The rootdn, the people, the test schema's state attribute; the rest as
// the defaults are.
LdapSettings settings() {
    LdapSettings s;
    s.uri = slapd().uri();
    s.bind_dn = "cn=admin,dc=example,dc=com";
    s.password_file = slapd().password_file();
    s.base = people;
    s.state_attribute = "accountStatus";
    return s;
}

SourceDirectory read_ok(const LdapSettings& s, std::vector<std::uint64_t>* progress = nullptr) {
    auto read = read_ldap(s, [&](std::uint64_t n) {
        if (progress) progress->push_back(n);
    });
    REQUIRE_MESSAGE(read.ok(), (read.ok() ? "" : read.error().message));
    return std::move(read).value();
}

Error read_fails(const LdapSettings& s, std::vector<std::uint64_t>* progress = nullptr) {
    auto read = read_ldap(s, [&](std::uint64_t n) {
        if (progress) progress->push_back(n);
    });
    REQUIRE(!read.ok());
    return read.error();
}

std::map<std::string, MailboxRecord> by_address(const SourceDirectory& d) {
    std::map<std::string, MailboxRecord> out;
    for (const auto& m : *d.mailboxes) out.emplace(m.address, m);
    return out;
}

std::vector<std::string> targets_of(const SourceDirectory& d, const std::string& address) {
    std::vector<std::string> out;
    for (const auto& a : *d.aliases)
        if (a.address == address) out.push_back(a.target);
    std::sort(out.begin(), out.end());
    return out;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("every mapped field, over three pages of 1000") {
    auto s = settings();
    s.alias_filter = "(objectClass=unitTestMailList)";
    s.alias_base = "ou=lists,dc=example,dc=com";
    std::vector<std::uint64_t> progress;
    const auto d = read_ok(s, &progress);

    REQUIRE(d.mailboxes);
    CHECK(d.mailboxes->size() == users);
    const auto mailboxes = by_address(d);
    const auto& user1 = mailboxes.at("user1@example.com");
    CHECK(user1.unit == "unit2.hosts.example.com");
    CHECK(user1.state == MailboxState::Active);
    CHECK(user1.moving_to.empty());
    CHECK(mailboxes.at("user50@example.org").state == MailboxState::Suspended);
    CHECK(mailboxes.at("user70@example.org").state == MailboxState::Disabled);
    CHECK(mailboxes.at("user90@example.org").state == MailboxState::Active);  // no accountStatus
    CHECK(mailboxes.at("user2999@example.com").unit == "unit3.hosts.example.com");

    REQUIRE(d.aliases);
    CHECK(d.aliases->size() == users / 5 + 3);
    CHECK(targets_of(d, "alias.user5@example.net") == std::vector<std::string>{"user5@example.com"});
    CHECK(targets_of(d, "sales@example.com") == std::vector<std::string>{"user1@example.com", "user2@example.com"});
    CHECK(targets_of(d, "partners@example.com") == std::vector<std::string>{"someone@partner.invalid"});

    // Addresses' domains, not the targets' (partner.invalid is foreign).
    REQUIRE(d.domains);
    CHECK(*d.domains == std::vector<std::string>{"example.com", "example.net", "example.org"});
    CHECK(!d.units);  // units are unitctl's

    CHECK(progress == std::vector<std::uint64_t>{1000, 2000, 3000, users + 2});
}

TEST_CASE("paging: pages of 7, one search without paging and pages of 1000 read the same") {
    auto s = settings();
    s.page_size = 7;
    const auto small = read_ok(s);
    s.page_size = 0;
    const auto whole = read_ok(s);
    s.page_size = 1000;
    const auto pages = read_ok(s);
    CHECK(small.mailboxes->size() == users);
    CHECK(by_address(small).size() == users);
    for (const auto* d : {&whole, &pages}) {
        CHECK(d->mailboxes->size() == users);
        CHECK(*d->domains == *small.domains);
        CHECK(d->aliases->size() == small.aliases->size());
    }
}

TEST_CASE("unit values: verbatim or the first DNS label") {
    auto s = settings();
    s.unit_value = LdapUnitValue::FirstLabel;
    CHECK(by_address(read_ok(s)).at("user1@example.com").unit == "unit2");
}

TEST_CASE("state map: rules in order, * for the rest; a value no rule takes fails the read") {
    auto s = settings();
    REQUIRE(apply_ldap_key("ldap_state_map", "active:active, Suspended:disabled, *:suspended", s).empty());
    auto mailboxes = by_address(read_ok(s));
    CHECK(mailboxes.at("user1@example.com").state == MailboxState::Active);
    CHECK(mailboxes.at("user50@example.org").state == MailboxState::Disabled);
    CHECK(mailboxes.at("user70@example.org").state == MailboxState::Suspended);
    CHECK(mailboxes.at("user90@example.org").state == MailboxState::Active);  // no value: active

    REQUIRE(apply_ldap_key("ldap_state_map", "active:active, suspended:suspended", s).empty());
    const auto error = read_fails(s);
    CHECK(error.code == Errc::Invalid);
    CHECK_MESSAGE(contains(error.message, "accountStatus 'disabled': no rule of ldap_state_map takes it"),
                  error.message);
    CHECK_MESSAGE(contains(error.message, ",ou=people,dc=example,dc=com"), error.message);  // the DN

    // Bits, as Active Directory's userAccountControl (2: disabled).
    const std::vector<LdapStateRule> bits{{LdapStateRule::Match::AnyBit, "", 2, MailboxState::Disabled},
                                          {LdapStateRule::Match::Any, "", 0, MailboxState::Active}};
    CHECK(map_ldap_state(bits, "514") == MailboxState::Disabled);
    CHECK(map_ldap_state(bits, "512") == MailboxState::Active);
    CHECK(map_ldap_state(bits, "66050") == MailboxState::Disabled);
}

TEST_CASE("aliases: the prefix, the entry's own address skipped, none configured is nullopt") {
    auto s = settings();
    s.alias_attribute = "mail";  // every entry's alias is its own address: skipped
    CHECK(read_ok(s).aliases->empty());
    s.alias_attribute = "mailAlternateAddress";
    s.alias_prefix = "ALIAS.";  // "alias.user5@example.net" -> "user5@example.net"
    CHECK(targets_of(read_ok(s), "user5@example.net") == std::vector<std::string>{"user5@example.com"});
    s.alias_attribute.clear();
    s.domains = LdapDomains::Keep;
    const auto d = read_ok(s);
    CHECK(!d.aliases);
    CHECK(!d.domains);
    CHECK(d.mailboxes->size() == users);
}

TEST_CASE("SASL EXTERNAL over ldapi: the process's own identity reads") {
    auto s = settings();
    s.bind_dn.clear();
    s.password_file.clear();
    s.sasl_mechanism = "EXTERNAL";
    CHECK(read_ok(s).mailboxes->size() == users);
    // Anonymous reads nothing (slapd.sh's ACL): the identity is what counts.
    s.sasl_mechanism.clear();
    CHECK(read_fails(s).code == Errc::Io);
}

TEST_CASE("connection and bind failures are Unavailable") {
    auto s = settings();
    s.password_file = slapd().secret("wrong", "not-the-password\n", 0600);
    auto error = read_fails(s);
    CHECK(error.code == Errc::Unavailable);
    CHECK_MESSAGE(contains(error.message,
                           "bind to " + s.uri + " as cn=admin,dc=example,dc=com failed: Invalid credentials"),
                  error.message);
    s = settings();
    s.uri = "ldap://127.0.0.1:1";
    error = read_fails(s);
    CHECK(error.code == Errc::Unavailable);
    CHECK_MESSAGE(contains(error.message, "Can't contact LDAP server"), error.message);
}

TEST_CASE("a size limit mid-way fails the whole read, paged or not") {
    auto s = settings();
    s.bind_dn = "cn=limited,dc=example,dc=com";  // at most 2500 entries
    s.password_file = slapd().secret("limited", "limited-secret", 0600);
    std::vector<std::uint64_t> progress;
    auto error = read_fails(s, &progress);
    CHECK(error.code == Errc::Io);
    CHECK_MESSAGE(contains(error.message, "stopped after 2500 entries, in page 3: Size limit exceeded"), error.message);
    CHECK(progress == std::vector<std::uint64_t>{1000, 2000});  // read, then dropped
    s.page_size = 0;
    error = read_fails(s);
    CHECK(error.code == Errc::Io);
    CHECK_MESSAGE(contains(error.message, "Size limit exceeded"), error.message);
}

TEST_CASE("a referral is not followed: Io") {
    auto s = settings();
    s.base = "dc=example,dc=com";
    s.filter = "(ou=elsewhere)";
    const auto error = read_fails(s);
    CHECK(error.code == Errc::Io);
    CHECK_MESSAGE(contains(error.message, "a referral, which is not followed"), error.message);
}

TEST_CASE("an entry the map cannot take fails the read, naming its DN") {
    auto s = settings();
    s.base = "ou=lists,dc=example,dc=com";  // lists: mail, no mailHost
    auto error = read_fails(s);
    CHECK(error.code == Errc::Invalid);
    CHECK_MESSAGE(contains(error.message, ",ou=lists,dc=example,dc=com: no mailHost"), error.message);

    s = settings();
    s.filter = "(uid=user1)";
    s.unit_attribute = "objectClass";  // three values
    error = read_fails(s);
    CHECK_MESSAGE(error.message ==
                      "ldap: uid=user1,ou=people,dc=example,dc=com: 3 values of objectClass (expected one)",
                  error.message);

    s = settings();
    s.filter = "(uid=user1)";
    s.address_attribute = "cn";  // "User 1": not an address
    error = read_fails(s);
    CHECK(error.code == Errc::Invalid);
    CHECK_MESSAGE(contains(error.message, "uid=user1,ou=people,dc=example,dc=com: cn 'User 1': "), error.message);
}

TEST_CASE("settings that cannot work: Invalid, before any search") {
    auto s = settings();
    s.password_file = slapd().secret("shared", "secret\n", 0644);
    CHECK_MESSAGE(contains(read_fails(s).message, "readable by others (chmod o-r)"), "");
    s.password_file = slapd().secret("empty", "\n", 0600);
    CHECK(contains(read_fails(s).message, "empty password"));
    s.password_file.clear();
    CHECK(contains(read_fails(s).message, "ldap_bind_dn and ldap_password_file go together"));
    s = settings();
    s.filter = "(mail=*";
    auto error = read_fails(s);
    CHECK(error.code == Errc::Invalid);
    CHECK(contains(error.message, "bad filter"));
    s.uri.clear();
    CHECK(read_fails(s).code == Errc::Invalid);
}

TEST_CASE("ldap_* keys: values checked, explanations") {
    LdapSettings s;
    CHECK(apply_ldap_key("ldap_uri", "ldapi://%2Frun%2Fslapd%2Fldapi ldaps://ldap.example.com", s).empty());
    CHECK(apply_ldap_key("ldap_uri", "http://x", s) == "'http://x' is not an ldap://, ldaps:// or ldapi:// URI");
    CHECK(apply_ldap_key("ldap_scope", "one", s).empty());
    CHECK(s.scope == LdapScope::One);
    CHECK(!apply_ldap_key("ldap_scope", "children", s).empty());
    CHECK(!apply_ldap_key("ldap_page_size", "-1", s).empty());
    CHECK(apply_ldap_key("ldap_page_size", "0", s).empty());
    CHECK(!apply_ldap_key("ldap_timeout", "0", s).empty());
    CHECK(apply_ldap_key("ldap_timeout", "2m", s).empty());
    CHECK(s.timeout == std::chrono::minutes(2));
    CHECK(!apply_ldap_key("ldap_sasl_mechanism", "GSSAPI", s).empty());
    CHECK(!apply_ldap_key("ldap_address_attribute", "", s).empty());
    CHECK(apply_ldap_key("ldap_state_attribute", "", s).empty());
    CHECK(!apply_ldap_key("ldap_state_map", "x:moving", s).empty());
    CHECK(!apply_ldap_key("ldap_state_map", "&0:disabled", s).empty());
    CHECK(apply_ldap_key("ldap_state_map", "&2:disabled, *:active", s).empty());
    CHECK(s.state_map.size() == 2);
    CHECK(apply_ldap_key("ldap_unit_value", "first_label", s).empty());
    CHECK(apply_ldap_key("ldap_domains", "keep", s).empty());
    CHECK(apply_ldap_key("ldap_nonsense", "1", s) == "unknown key 'ldap_nonsense'");
}
