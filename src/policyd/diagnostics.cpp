#include "policyd/diagnostics.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <ctime>
#include <ostream>
#include <sstream>
#include <vector>

#include "common/json_writer.hpp"
#include "common/version.hpp"
#include "policyd/answers.hpp"
#include "policyd/stats.hpp"
#include "unit/directory.hpp"
#include "unit/resolver.hpp"

namespace unit::policyd {

namespace {

constexpr MapName all_maps[] = {MapName::Recipient, MapName::TransportMx, MapName::TransportUnit, MapName::Alias};
constexpr const char* map_names[] = {"domain", "recipient", "transportmx", "transportunit", "alias"};

const char* name_of(MapName m) { return map_names[static_cast<int>(m)]; }

std::string utc(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buffer;
}

void print_answers(std::ostream& out, const char* role, const Resolution& r, const DomainResolution& d,
                   const AnswerSettings& answers) {
    fmt::print(out, "{} role{}:\n", role, answers.unit.empty() ? "" : fmt::format(" (unit {})", answers.unit));
    fmt::print(out, "  policy (RCPT)   action={}\n", policy_action(r, answers).text);
    fmt::print(out, "  socketmap {:<13} {}\n", "domain", domain_reply(d).text);
    for (MapName m : all_maps) {
        if (m == MapName::TransportUnit && answers.unit.empty()) continue;
        if (m == MapName::TransportMx && !answers.unit.empty()) continue;
        fmt::print(out, "  socketmap {:<13} {}\n", name_of(m), map_reply(m, r, answers).text);
    }
}

}  // namespace

int run_query(const Settings& settings, std::ostream& out) {
    DirectoryOptions options{settings.db, std::chrono::milliseconds(250), std::chrono::milliseconds(1000), {}};
    options.lookup_timeout = settings.lookup_timeout;  // answers as the daemon would
    Directory directory(options);
    Resolution r = resolve(directory, settings.resolver, settings.query_address);
    auto at = r.address.rfind('@');
    DomainResolution d = resolve_domain(directory, settings.resolver,
                                        at == std::string::npos ? r.address : r.address.substr(at + 1));

    fmt::print(out, "query {}\n", settings.query_address);
    for (const auto& step : r.trace) fmt::print(out, "  {}\n", step);
    fmt::print(out, "outcome: {}{}\n", to_string(r.outcome), r.reason.empty() ? "" : " (" + r.reason + ")");
    AnswerSettings mx = settings.answers;
    mx.unit.clear();
    print_answers(out, "MX", r, d, mx);
    if (!settings.answers.unit.empty()) print_answers(out, "unit", r, d, settings.answers);
    return r.outcome == Outcome::Tempfail ? 1 : 0;
}

namespace {

// The daemon's counters from its control socket: a flat JSON object.
std::optional<std::string> read_control(const std::string& path, std::string& error) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        error = fmt::format("{}: {}", path, std::strerror(errno));
        if (fd >= 0) close(fd);
        return std::nullopt;
    }
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
    close(fd);
    while (!text.empty() && (text.back() == '\n')) text.pop_back();
    if (text.size() < 2 || text.front() != '{' || text.back() != '}') {
        error = fmt::format("{}: no counters in the answer", path);
        return std::nullopt;
    }
    return text;
}

// "name": value pairs of the control socket's flat JSON object, in order
// (none when it cannot be read).
std::vector<std::pair<std::string, std::string>> json_pairs(const std::string& object) {
    std::vector<std::pair<std::string, std::string>> pairs;
    try {
        boost::property_tree::ptree tree;
        std::istringstream in(object);
        boost::property_tree::read_json(in, tree);
        for (const auto& [name, value] : tree) pairs.emplace_back(name, value.data());
    } catch (const boost::property_tree::json_parser_error&) {
    }
    return pairs;
}

std::string value_of(const std::vector<std::pair<std::string, std::string>>& pairs, std::string_view name) {
    for (const auto& [k, v] : pairs)
        if (k == name) return v;
    return {};
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

// What --dump reports: the replica as this process reads it, and the
// daemon's counters when a control socket is given.
struct DumpFacts {
    DirectoryStatus status;
    std::optional<DirectorySummary> summary;
    std::string problem;
    std::optional<std::int64_t> age;
    std::optional<std::string> counters;  // the daemon's JSON
    std::string control_error;
};

DumpFacts gather(const Settings& settings) {
    DirectoryOptions options{settings.db, std::chrono::milliseconds(250), std::chrono::milliseconds(1000), {}};
    options.validation_timeout = settings.validation_timeout;
    Directory directory(options);
    DumpFacts f;
    f.problem = directory.status().problem;
    if (auto reader = directory.read()) {
        auto s = reader->summary();
        if (s) f.summary = std::move(s.value());
        else f.problem = s.error().message;
    }
    f.status = directory.status();
    f.age = directory.age_seconds(std::time(nullptr));
    if (!settings.control.empty()) f.counters = read_control(settings.control, f.control_error);
    return f;
}

// The "database" section, in order.
Pairs database_lines(const Settings& settings, const DumpFacts& f) {
    Pairs db = {{"path", settings.db}, {"serving", f.status.serving ? "yes" : "no"}, {"problem", f.problem}};
    // What the daemon serves, from its control socket: this process may read
    // the file when the daemon cannot (another user), or the other way round.
    if (f.counters) {
        auto pairs = json_pairs(*f.counters);
        db.emplace_back("daemon_generation", value_of(pairs, "replica_generation"));
        db.emplace_back("daemon_validating", value_of(pairs, "replica_validating") == "1" ? "yes" : "no");
        db.emplace_back("daemon_refused", value_of(pairs, "replica_refused"));
    }
    if (f.status.serving) {
        const auto& snap = f.status.snapshot;
        db.emplace_back("schema_version", std::to_string(snap.schema_version));
        db.emplace_back("generation", std::to_string(snap.generation));
        db.emplace_back("published_at", snap.published_at ? utc(*snap.published_at) : "never");
        db.emplace_back("age_seconds", !f.age                  ? ""
                                       : *f.age == unknown_age ? "unknown (published in the future)"
                                                               : std::to_string(*f.age));
    }
    if (f.summary) {
        db.emplace_back("domains", std::to_string(f.summary->domains));
        db.emplace_back("units", std::to_string(f.summary->units.size()));
        for (int i = 0; i < 4; ++i)
            db.emplace_back(fmt::format("mailboxes_{}", to_string(static_cast<MailboxState>(i))),
                            std::to_string(f.summary->mailboxes_by_state[i]));
        db.emplace_back("aliases", std::to_string(f.summary->aliases));
        db.emplace_back("alias_targets", std::to_string(f.summary->alias_targets));
    }
    return db;
}

void print_json(const Settings& settings, const DumpFacts& f, const Pairs& db, std::ostream& out) {
    auto object = [](const Pairs& pairs) {
        common::JsonObject o;
        for (const auto& [k, v] : pairs) o.string(k, v);
        return o.text();
    };
    std::vector<std::string> units;
    if (f.summary)
        for (const auto& [u, count] : f.summary->units)
            units.push_back(common::JsonObject()
                                .string("name", u.name)
                                .string("route", u.route())
                                .string("state", to_string(u.state))
                                .number("mailboxes", static_cast<std::int64_t>(count))
                                .text());
    common::JsonObject dump;
    dump.string("version", UNIT_VERSION)
        .json("configuration", object(describe(settings)))
        .json("database", object(db))
        .json("units", common::json_array(units));
    if (f.counters) dump.json("daemon", *f.counters);
    else if (f.control_error.empty()) dump.null("daemon");
    else dump.string("daemon", f.control_error);
    fmt::print(out, "{}\n", dump.text());
}

void print_text(const Settings& settings, const DumpFacts& f, const Pairs& db, std::ostream& out) {
    fmt::print(out, "unitpolicy {}\n\nconfiguration:\n", UNIT_VERSION);
    for (const auto& [k, v] : describe(settings)) fmt::print(out, "  {} = {}\n", k, v);
    fmt::print(out, "\ndatabase:\n");
    for (const auto& [k, v] : db) fmt::print(out, "  {}: {}\n", k, v);
    if (f.summary) {
        fmt::print(out, "\nunits:\n");
        for (const auto& [u, count] : f.summary->units)
            fmt::print(out, "  {:<16} {:<32} {:<9} {} mailboxes\n", u.name, u.route(), to_string(u.state), count);
    }
    if (f.counters) {
        fmt::print(out, "\ndaemon ({}):\n", settings.control);
        for (const auto& [k, v] : json_pairs(*f.counters)) fmt::print(out, "  {}: {}\n", k, v);
    } else if (!f.control_error.empty()) {
        fmt::print(out, "\ndaemon: {}\n", f.control_error);
    }
}

}  // namespace

int run_dump(const Settings& settings, std::ostream& out) {
    const DumpFacts facts = gather(settings);
    const Pairs db = database_lines(settings, facts);
    if (settings.json) print_json(settings, facts, db, out);
    else print_text(settings, facts, db, out);
    return facts.status.serving && facts.control_error.empty() ? 0 : 1;
}

}  // namespace unit::policyd
