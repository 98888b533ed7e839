#include "ctl/ldap_source.hpp"

#include <fcntl.h>
#include <ldap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <vector>

#include "common/log.hpp"
#include "unit/address.hpp"
#include "unit/values.hpp"

namespace unit::ctl {

namespace {

// RAII for libldap's handles.
struct HandleFree {
    void operator()(LDAP* ld) const noexcept { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
struct MessageFree {
    void operator()(LDAPMessage* message) const noexcept { ldap_msgfree(message); }
};
struct ValuesFree {
    void operator()(berval** values) const noexcept { ldap_value_free_len(values); }
};
struct ControlFree {
    void operator()(LDAPControl* control) const noexcept { ldap_control_free(control); }
};
struct ControlsFree {
    void operator()(LDAPControl** controls) const noexcept { ldap_controls_free(controls); }
};
struct MemFree {
    void operator()(char* text) const noexcept { ldap_memfree(text); }
};
struct ReferralsFree {
    void operator()(char** referrals) const noexcept { ldap_memvfree(reinterpret_cast<void**>(referrals)); }
};
using Handle = std::unique_ptr<LDAP, HandleFree>;
using Message = std::unique_ptr<LDAPMessage, MessageFree>;
using Values = std::unique_ptr<berval*, ValuesFree>;
using Control = std::unique_ptr<LDAPControl, ControlFree>;
using Controls = std::unique_ptr<LDAPControl*, ControlsFree>;
using LdapText = std::unique_ptr<char, MemFree>;
using Referrals = std::unique_ptr<char*, ReferralsFree>;

// A page cookie that libldap allocated.
struct Cookie {
    berval value{0, nullptr};
    Cookie() = default;
    Cookie(const Cookie&) = delete;
    Cookie& operator=(const Cookie&) = delete;
    ~Cookie() { ber_memfree(value.bv_val); }
};

constexpr std::uint64_t progress_every = 1000;
constexpr std::size_t max_password_bytes = 4096;

// A value from the directory, shown in a message: escaped, so that an
// entry cannot write its own lines on the operator's terminal.
std::string shown(std::string_view value) { return common::printable(value, 200); }

timeval to_timeval(std::chrono::seconds seconds) noexcept { return timeval{static_cast<time_t>(seconds.count()), 0}; }

// libldap's diagnostic for the last operation on `ld`, as " (text)".
std::string diagnostic(LDAP* ld) {
    char* raw = nullptr;
    ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &raw);
    LdapText text(raw);
    return text && *text ? fmt::format(" ({})", shown(text.get())) : std::string();
}

int last_error(LDAP* ld) noexcept {
    int code = LDAP_OTHER;
    ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &code);
    return code;
}

// The first line of the password file, which others may not read. An empty
// password is refused: LDAP takes a simple bind with one as anonymous
// (RFC 4513, 5.1.2), which would read the directory as nobody.
Result<std::string> read_password(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Error{Errc::Invalid, fmt::format("ldap_password_file {}: {}", path, std::strerror(errno))};
    std::unique_ptr<const int, void (*)(const int*)> closer(&fd, [](const int* f) { ::close(*f); });
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return Error{Errc::Invalid, fmt::format("ldap_password_file {}: not a regular file", path)};
    if (st.st_mode & S_IROTH)
        return Error{Errc::Invalid, fmt::format("ldap_password_file {}: readable by others (chmod o-r)", path)};
    std::string password(max_password_bytes + 1, '\0');
    std::size_t got = 0;
    while (got < password.size()) {
        const auto n = ::read(fd, password.data() + got, password.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error{Errc::Invalid, fmt::format("ldap_password_file {}: {}", path, std::strerror(errno))};
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    if (got > max_password_bytes)
        return Error{Errc::Invalid,
                     fmt::format("ldap_password_file {}: longer than {} bytes", path, max_password_bytes)};
    password.resize(std::min(got, password.find('\n')));
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) return Error{Errc::Invalid, fmt::format("ldap_password_file {}: empty password", path)};
    return password;
}

// A bound connection, or Invalid (settings) or Unavailable (server, bind).
Result<Handle> connect(const LdapSettings& s) {
    if (s.uri.empty()) return Error{Errc::Invalid, "ldap: no ldap_uri in the configuration"};
    if (!s.sasl_mechanism.empty() && !s.bind_dn.empty())
        return Error{Errc::Invalid, "ldap: ldap_bind_dn and ldap_sasl_mechanism exclude each other"};
    if (s.bind_dn.empty() != s.password_file.empty())
        return Error{Errc::Invalid, "ldap: ldap_bind_dn and ldap_password_file go together"};
    std::string password;
    if (!s.password_file.empty()) {
        auto read = read_password(s.password_file);
        if (!read) return Error{Errc::Invalid, "ldap: " + read.error().message};
        password = std::move(read).value();
    }

    LDAP* raw = nullptr;
    if (ldap_initialize(&raw, s.uri.c_str()) != LDAP_SUCCESS || raw == nullptr)
        return Error{Errc::Invalid, fmt::format("ldap: ldap_uri '{}': not a URI libldap takes", s.uri)};
    Handle ld(raw);
    const int version = LDAP_VERSION3;
    const timeval timeout = to_timeval(s.timeout);
    if (ldap_set_option(ld.get(), LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld.get(), LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld.get(), LDAP_OPT_NETWORK_TIMEOUT, &timeout) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld.get(), LDAP_OPT_TIMEOUT, &timeout) != LDAP_OPT_SUCCESS)
        return Error{Errc::Invalid, "ldap: libldap refuses an option"};

    int rc = LDAP_SUCCESS;
    std::string who;
    if (!s.sasl_mechanism.empty()) {
        // EXTERNAL: the identity the transport proves (over ldapi://, the
        // process's uid and gid), asked for by an empty initial response
        // (RFC 4422, appendix A); without one, slapd asks for it instead.
        char nothing[] = "";
        berval empty{0, nothing};
        rc = ldap_sasl_bind_s(ld.get(), nullptr, "EXTERNAL", &empty, nullptr, nullptr, nullptr);
        who = "with SASL EXTERNAL";
    } else {
        berval credentials{password.size(), password.data()};
        rc = ldap_sasl_bind_s(ld.get(), s.bind_dn.c_str(), LDAP_SASL_SIMPLE, &credentials, nullptr, nullptr, nullptr);
        who = s.bind_dn.empty() ? "anonymously" : "as " + s.bind_dn;
        std::fill(password.begin(), password.end(), '\0');
    }
    if (rc != LDAP_SUCCESS)
        return Error{Errc::Unavailable, fmt::format("ldap: bind to {} {} failed: {}{}", s.uri, who, ldap_err2string(rc),
                                                    diagnostic(ld.get()))};
    return ld;
}

struct Search {
    std::string base;
    int scope = LDAP_SCOPE_SUBTREE;
    std::string filter;
    std::vector<std::string> attributes;
};

int scope_of(LdapScope scope) noexcept {
    switch (scope) {
    case LdapScope::Base: return LDAP_SCOPE_BASE;
    case LdapScope::One: return LDAP_SCOPE_ONELEVEL;
    case LdapScope::Sub: break;
    }
    return LDAP_SCOPE_SUBTREE;
}

// One search in progress: what the error messages call it, the attributes
// as libldap takes them, the page reached and the entries read so far.
struct PagedSearch {
    const Search& search;
    std::string what;
    std::vector<char*> attributes;
    Cookie cookie;
    int page = 1;
    std::uint64_t entries = 0;

    explicit PagedSearch(const Search& s)
        : search(s), what(fmt::format("ldap: search of '{}' for {}", s.base, s.filter)) {
        for (const auto& a : s.attributes) attributes.push_back(const_cast<char*>(a.c_str()));
        attributes.push_back(nullptr);
    }
};

// Sends the request for the current page; returns its message id.
Result<int> request_page(LDAP* ld, const LdapSettings& s, PagedSearch& p) {
    Control page_control;
    LDAPControl* controls[2] = {nullptr, nullptr};
    if (s.page_size > 0) {
        // Not critical: a server without paging answers in one piece, or
        // with a size limit, which fails later.
        LDAPControl* made = nullptr;
        berval* previous = p.page == 1 ? nullptr : &p.cookie.value;
        if (ldap_create_page_control(ld, s.page_size, previous, 0, &made) != LDAP_SUCCESS)
            return Error{Errc::Io, fmt::format("{}: cannot make the paged results control", p.what)};
        page_control.reset(made);
        controls[0] = made;
    }
    int id = 0;
    const int rc = ldap_search_ext(ld, p.search.base.c_str(), p.search.scope, p.search.filter.c_str(),
                                   p.attributes.data(), 0, controls, nullptr, nullptr, LDAP_NO_LIMIT, &id);
    if (rc == LDAP_FILTER_ERROR) return Error{Errc::Invalid, fmt::format("{}: bad filter", p.what)};
    if (rc != LDAP_SUCCESS)
        return Error{Errc::Io, fmt::format("{}: {}{}", p.what, ldap_err2string(rc), diagnostic(ld))};
    return id;
}

// Reads the answers to request `id`, calling on_entry(entry) for each entry;
// returns the page's result message.
template <class OnEntry>
Result<Message> read_page(LDAP* ld, const LdapSettings& s, PagedSearch& p, int id, OnEntry& on_entry) {
    for (;;) {
        LDAPMessage* raw = nullptr;
        timeval wait = to_timeval(s.timeout);
        const int rc = ldap_result(ld, id, LDAP_MSG_ONE, &wait, &raw);
        Message message(raw);
        if (rc == 0)
            return Error{Errc::Io, fmt::format("{}: no answer within {} s (ldap_timeout) after {} entries", p.what,
                                               s.timeout.count(), p.entries)};
        if (rc < 0)
            return Error{Errc::Io, fmt::format("{}: stopped after {} entries: {}{}", p.what, p.entries,
                                               ldap_err2string(last_error(ld)), diagnostic(ld))};
        if (rc == LDAP_RES_SEARCH_ENTRY) {
            ++p.entries;
            if (auto taken = on_entry(message.get()); !taken) return taken.error();
        } else if (rc == LDAP_RES_SEARCH_REFERENCE) {
            return Error{Errc::Io,
                         fmt::format("{}: a referral, which is not followed (narrow ldap_base or the filter)", p.what)};
        } else if (rc == LDAP_RES_SEARCH_RESULT) {
            return message;
        }
    }
}

// Checks a page's result and takes the cookie of the next page; returns
// whether another page follows.
Result<bool> next_page(LDAP* ld, const LdapSettings& s, PagedSearch& p, LDAPMessage* result) {
    int code = LDAP_OTHER;
    char* raw_text = nullptr;
    char** raw_referrals = nullptr;
    LDAPControl** raw_controls = nullptr;
    const int rc = ldap_parse_result(ld, result, &code, nullptr, &raw_text, &raw_referrals, &raw_controls, 0);
    LdapText text(raw_text);
    Referrals referrals(raw_referrals);
    Controls response_controls(raw_controls);
    if (rc != LDAP_SUCCESS)
        return Error{Errc::Io, fmt::format("{}: unreadable result: {}", p.what, ldap_err2string(rc))};
    if (code != LDAP_SUCCESS)
        return Error{Errc::Io,
                     fmt::format("{}: stopped after {} entries, in page {}: {}{}", p.what, p.entries, p.page,
                                 ldap_err2string(code), text && *text ? fmt::format(" ({})", shown(text.get())) : "")};
    if (s.page_size == 0) return false;
    LDAPControl* response = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, response_controls.get(), nullptr);
    if (response == nullptr) {
        // The first page without the control: the server does not page
        // and sent everything. Later, the server lost the thread.
        if (p.page == 1) return false;
        return Error{Errc::Io, fmt::format("{}: page {} came without its paged results control", p.what, p.page)};
    }
    ber_memfree(p.cookie.value.bv_val);
    p.cookie.value = berval{0, nullptr};
    ber_int_t estimate = 0;
    if (ldap_parse_pageresponse_control(ld, response, &estimate, &p.cookie.value) != LDAP_SUCCESS)
        return Error{Errc::Io, fmt::format("{}: page {}: unreadable paged results control", p.what, p.page)};
    return p.cookie.value.bv_len != 0;
}

// Runs `search` to its end, page after page, calling on_entry(entry) for
// each entry. Anything but a successful last page is an error: nothing the
// caller gathered may be used then.
template <class OnEntry>
Result<void> search_all(LDAP* ld, const LdapSettings& s, const Search& search, OnEntry&& on_entry) {
    PagedSearch p(search);
    for (;; ++p.page) {
        auto id = request_page(ld, s, p);
        if (!id) return id.error();
        auto result = read_page(ld, s, p, *id, on_entry);
        if (!result) return result.error();
        auto more = next_page(ld, s, p, result->get());
        if (!more) return more.error();
        if (!*more) return {};
    }
}

// The entries of both searches, turned into records as they arrive.
class Builder {
public:
    Builder(LDAP* ld, const LdapSettings& s, const LdapProgress& progress) : ld_(ld), s_(s), progress_(progress) {}

    Result<void> mailbox(LDAPMessage* entry) {
        auto address = one_value(entry, s_.address_attribute);
        if (!address) return address.error();
        auto normal = check_address(entry, s_.address_attribute, *address, false);
        if (!normal) return normal.error();
        auto unit = one_value(entry, s_.unit_attribute);
        if (!unit) return unit.error();
        MailboxRecord mailbox;
        mailbox.address = *address;
        mailbox.unit = *unit;
        if (s_.unit_value == LdapUnitValue::FirstLabel) {
            mailbox.unit = unit->substr(0, unit->find('.'));
            for (char& c : mailbox.unit)
                if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            if (mailbox.unit.empty()) return bad(entry, s_.unit_attribute, *unit, "no first label");
        }
        if (!s_.state_attribute.empty()) {
            const auto states = values(entry, s_.state_attribute);
            if (states.size() > 1) return several(entry, s_.state_attribute, states.size());
            if (states.size() == 1) {
                const auto state = map_ldap_state(s_.state_map, states[0]);
                if (!state) return bad(entry, s_.state_attribute, states[0], "no rule of ldap_state_map takes it");
                mailbox.state = *state;
            }
        }
        if (!s_.alias_attribute.empty()) {
            for (auto& alias : values(entry, s_.alias_attribute)) {
                if (!s_.alias_prefix.empty()) {
                    const auto start = std::string_view(alias).substr(0, s_.alias_prefix.size());
                    if (!equal_ignoring_case(start, s_.alias_prefix)) continue;
                    alias.erase(0, s_.alias_prefix.size());
                }
                auto normal_alias = check_address(entry, s_.alias_attribute, alias, true);
                if (!normal_alias) return normal_alias.error();
                if (*normal_alias == *normal) continue;  // the entry's own address, as proxyAddresses lists it
                aliases_.push_back({std::move(alias), *address});
            }
        }
        mailboxes_.push_back(std::move(mailbox));
        return counted();
    }

    Result<void> alias(LDAPMessage* entry) {
        auto address = one_value(entry, s_.alias_address_attribute);
        if (!address) return address.error();
        if (auto normal = check_address(entry, s_.alias_address_attribute, *address, true); !normal)
            return normal.error();
        const auto targets = values(entry, s_.alias_target_attribute);
        if (targets.empty()) return missing(entry, s_.alias_target_attribute);
        for (const auto& target : targets) {
            if (auto good = check_alias_target(target); !good)
                return bad(entry, s_.alias_target_attribute, target, good.error().message);
            aliases_.push_back({*address, target});
        }
        return counted();
    }

    SourceDirectory finish() {
        if (progress_) progress_(entries_);
        SourceDirectory directory;
        directory.mailboxes = std::move(mailboxes_);
        if (!s_.alias_attribute.empty() || !s_.alias_filter.empty()) directory.aliases = std::move(aliases_);
        if (s_.domains == LdapDomains::FromAddresses)
            directory.domains = std::vector<std::string>(domains_.begin(), domains_.end());
        return directory;
    }

private:
    Result<void> counted() {
        if (++entries_ % progress_every == 0 && progress_) progress_(entries_);
        return {};
    }

    std::vector<std::string> values(LDAPMessage* entry, const std::string& attribute) const {
        Values found(ldap_get_values_len(ld_, entry, attribute.c_str()));
        std::vector<std::string> out;
        if (found)
            for (berval** v = found.get(); *v != nullptr; ++v) out.emplace_back((*v)->bv_val, (*v)->bv_len);
        return out;
    }

    std::string dn(LDAPMessage* entry) const {
        LdapText text(ldap_get_dn(ld_, entry));
        return text ? shown(text.get()) : std::string("(an entry without a DN)");
    }

    Error bad(LDAPMessage* entry, const std::string& attribute, std::string_view value, std::string_view why) const {
        return Error{Errc::Invalid, fmt::format("ldap: {}: {} '{}': {}", dn(entry), attribute, shown(value), why)};
    }
    Error missing(LDAPMessage* entry, const std::string& attribute) const {
        return Error{Errc::Invalid, fmt::format("ldap: {}: no {}", dn(entry), attribute)};
    }
    Error several(LDAPMessage* entry, const std::string& attribute, std::size_t count) const {
        return Error{Errc::Invalid,
                     fmt::format("ldap: {}: {} values of {} (expected one)", dn(entry), count, attribute)};
    }

    Result<std::string> one_value(LDAPMessage* entry, const std::string& attribute) const {
        auto found = values(entry, attribute);
        if (found.empty()) return missing(entry, attribute);
        if (found.size() > 1) return several(entry, attribute, found.size());
        return std::move(found[0]);
    }

    // The address normalised (a catch-all "@domain" when allowed), its
    // domain noted; Invalid naming the entry when it is malformed.
    Result<std::string> check_address(LDAPMessage* entry, const std::string& attribute, const std::string& value,
                                      bool catch_all) {
        if (catch_all && !value.empty() && value.front() == '@') {
            auto domain = normalize_domain(std::string_view(value).substr(1));
            if (!domain) return bad(entry, attribute, value, domain.error().message);
            domains_.insert(*domain);
            return '@' + *domain;
        }
        auto address = normalize_address(value, AddressOptions{});
        if (!address) return bad(entry, attribute, value, address.error().message);
        domains_.insert(address->domain);
        return address->full();
    }

    LDAP* ld_;
    const LdapSettings& s_;
    const LdapProgress& progress_;
    std::uint64_t entries_ = 0;
    std::set<std::string> domains_;
    std::vector<MailboxRecord> mailboxes_;
    std::vector<AliasRecord> aliases_;
};

Result<SourceDirectory> read(const LdapSettings& s, const LdapProgress& progress) {
    auto ld = connect(s);
    if (!ld) return ld.error();
    Builder builder(ld->get(), s, progress);

    Search mailboxes{s.base,
                     scope_of(s.scope),
                     s.filter.empty() ? "(" + s.address_attribute + "=*)" : s.filter,
                     {s.address_attribute, s.unit_attribute}};
    if (!s.state_attribute.empty()) mailboxes.attributes.push_back(s.state_attribute);
    if (!s.alias_attribute.empty()) mailboxes.attributes.push_back(s.alias_attribute);
    auto read = search_all(ld->get(), s, mailboxes, [&](LDAPMessage* e) { return builder.mailbox(e); });
    if (!read) return read.error();

    if (!s.alias_filter.empty()) {
        Search aliases{s.alias_base.empty() ? s.base : s.alias_base,
                       scope_of(s.scope),
                       s.alias_filter,
                       {s.alias_address_attribute, s.alias_target_attribute}};
        read = search_all(ld->get(), s, aliases, [&](LDAPMessage* e) { return builder.alias(e); });
        if (!read) return read.error();
    }
    return builder.finish();
}

}  // namespace

Result<SourceDirectory> read_ldap(const LdapSettings& settings, const LdapProgress& progress) noexcept {
    try {
        return read(settings, progress);
    } catch (const std::exception& e) {  // from the caller's progress callback
        return Error{Errc::Io, fmt::format("ldap: {}", e.what())};
    }
}

}  // namespace unit::ctl
