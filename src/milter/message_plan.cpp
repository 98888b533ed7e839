#include "milter/message_plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "unit/address.hpp"

namespace unit::milter {

using common::printable;
using common::Severity;

namespace {

// What the directory says about the recipients of one message.
struct RecipientPlan {
    std::set<std::string> units;
    std::int64_t generation = -1;
    std::vector<std::string> tempfails;  // "to=<rcpt>: reason"
    std::vector<std::string> elsewhere;  // role unit: "to=<rcpt>: where it goes"
    std::vector<Expansion> expansions;
    bool too_many = false;            // expansion above max_added_recipients
    std::vector<std::string> unsafe;  // alias targets not fit for the envelope (skipped)
};

// Whether an alias target from the database may go into smfi_addrcpt as
// "<target>": no space, control character or angle bracket.
bool envelope_safe(std::string_view address) noexcept {
    return !address.empty() && address.size() <= max_address_length &&
           std::none_of(address.begin(), address.end(), [](char c) {
               return static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '<' || c == '>';
           });
}

std::vector<std::string> units_of(const Resolution& r) {
    std::vector<std::string> units;
    if (r.outcome == Outcome::Mailbox && r.destination) units.push_back(r.destination->unit.name);
    if (r.outcome == Outcome::Alias)
        for (const auto& t : r.targets)
            if (t.kind == AliasTarget::Kind::Mailbox && t.destination) units.push_back(t.destination->unit.name);
    return units;
}

// Where a recipient goes instead of this unit; empty when it stays here.
std::string elsewhere(const Resolution& r, const std::string& own_unit) {
    switch (r.outcome) {
    case Outcome::Mailbox:
        return r.destination && r.destination->unit.name != own_unit ? "unit " + r.destination->unit.name : "";
    case Outcome::Alias: {
        std::vector<std::string> away;
        for (const auto& t : r.targets) {
            if (t.kind == AliasTarget::Kind::External) away.push_back("external " + t.address);
            else if (t.kind == AliasTarget::Kind::Mailbox && t.destination && t.destination->unit.name != own_unit)
                away.push_back("unit " + t.destination->unit.name);
        }
        return away.empty() ? "" : fmt::format("alias to {}", fmt::join(away, ", "));
    }
    case Outcome::Foreign: return "foreign domain";
    case Outcome::Unknown:
    case Outcome::Unconfirmed: return "unknown here";
    case Outcome::Disabled: return "disabled mailbox";
    case Outcome::Malformed: return "malformed address";
    case Outcome::Tempfail: return "";
    }
    return "";
}

// The alias's deliverable targets instead of `raw`, or nullopt when it has
// none (the recipient is then left as it is). Unsafe targets are noted.
std::optional<Expansion> expansion_of(const Resolution& r, const std::string& raw, RecipientPlan& plan) {
    Expansion e{raw, false, {}};
    for (const auto& t : r.targets) {
        if (t.kind != AliasTarget::Kind::Mailbox && t.kind != AliasTarget::Kind::External) continue;
        if (!envelope_safe(t.address)) {
            plan.unsafe.push_back(fmt::format("{}: target {}", to_field(raw), printable(t.address)));
            continue;
        }
        if (t.address == r.address) e.keep = true;  // the alias keeps its own mailbox
        else e.targets.push_back(t.address);
    }
    if (e.targets.empty()) return std::nullopt;
    return e;
}

RecipientPlan plan_recipients(Directory& directory, const Settings& settings, const std::vector<std::string>& raws) {
    RecipientPlan plan;
    std::set<std::string> present;  // the envelope's recipients once edits are done
    for (const auto& raw : raws) {
        const Resolution r = resolve(directory, settings.resolver, bare_address(raw));
        if (r.generation >= 0) plan.generation = std::max(plan.generation, r.generation);
        if (r.outcome == Outcome::Tempfail) {
            plan.tempfails.push_back(fmt::format("{}: {}", to_field(raw), r.reason));
            continue;
        }
        for (auto& u : units_of(r)) plan.units.insert(std::move(u));
        if (settings.role == Role::Unit) {
            if (auto where = elsewhere(r, settings.unit); !where.empty())
                plan.elsewhere.push_back(fmt::format("{}: {}", to_field(raw), where));
        }
        const bool alias = settings.expand_aliases && r.outcome == Outcome::Alias;
        if (alias && !r.doubt.empty()) {
            // A target unknown or disabled here may receive mail in the newer
            // replica: expanding now would leave its copy out for good.
            plan.tempfails.push_back(fmt::format("{}: alias with undeliverable targets, in doubt: {}", to_field(raw),
                                                 r.doubt));
            continue;
        }
        auto expansion = alias ? expansion_of(r, raw, plan) : std::nullopt;
        if (expansion) {
            if (expansion->keep) present.insert(r.address);
            plan.expansions.push_back(std::move(*expansion));
        } else {
            present.insert(r.address.empty() ? std::string(bare_address(raw)) : r.address);
        }
    }
    std::size_t added = 0;
    for (auto& e : plan.expansions) {
        std::vector<std::string> fresh;
        for (auto& t : e.targets)
            if (present.insert(t).second) fresh.push_back(std::move(t));
        e.targets = std::move(fresh);
        added += e.targets.size();
    }
    plan.too_many = added > max_added_recipients;
    return plan;
}

void note(MessagePlan& plan, Severity severity, std::string text) { plan.notes.push_back({severity, std::move(text)}); }

MessagePlan refused(MessagePlan plan, Severity severity, std::string text, Reply reply) {
    note(plan, severity, std::move(text));
    plan.refusal = std::move(reply);
    return plan;
}

// Notes the recipients the directory could not answer for; true when the
// message is refused for them.
bool directory_in_doubt(MessagePlan& plan, const RecipientPlan& recipients, const Settings& settings) {
    if (recipients.tempfails.empty()) return false;
    plan.directory_tempfail = true;
    for (const auto& t : recipients.tempfails) note(plan, Severity::Warning, fmt::format("directory: {}", t));
    if (settings.tempfail_action == TempfailAction::Tempfail) return true;
    note(plan, Severity::Warning,
         fmt::format("directory unavailable for {} recipient(s): accepting, route incomplete",
                     recipients.tempfails.size()));
    return false;
}

std::string route_value(const RecipientPlan& recipients, const Settings& settings, int hop) {
    Route route;
    route.hop = hop;
    if (recipients.generation >= 0) route.gen = recipients.generation;
    route.units.assign(recipients.units.begin(), recipients.units.end());
    route.by = settings.hostname;
    return format_route(route);
}

}  // namespace

Reply directory_tempfail_reply() { return {"451", "4.3.0", "Directory temporarily unavailable"}; }
Reply internal_reply() { return {"451", "4.3.0", "Routing filter temporarily unavailable"}; }

std::string_view bare_address(std::string_view raw) noexcept {
    while (!raw.empty() && (raw.front() == ' ' || raw.front() == '\t')) raw.remove_prefix(1);
    if (raw.size() >= 2 && raw.front() == '<') {
        auto close = raw.find('>');
        if (close != std::string_view::npos) return raw.substr(1, close - 1);
    }
    return raw;
}

std::string to_field(std::string_view raw, std::string_view field) {
    return fmt::format("{}=<{}>", field, printable(bare_address(raw)));
}

MessagePlan plan_message(const Settings& settings, Directory& directory, const MessageFacts& facts) {
    MessagePlan plan;
    // An untrusted client's verdict needs no directory: a header flood is
    // refused before any lookup.
    HeaderVerdict verdict;
    if (!facts.trusted) {
        verdict = check_headers(facts.headers, false, settings.max_hops);
        if (verdict.refuse)
            return refused(std::move(plan), Severity::Warning,
                           fmt::format("reject: {} {}* headers from untrusted client={}, more than "
                                       "max_stripped_headers ({}): {} {} {}",
                                       facts.headers.occurrences(), settings.header_prefix, facts.client,
                                       facts.headers.max_stripped(), verdict.refuse->code, verdict.refuse->xcode,
                                       verdict.refuse->text),
                           *verdict.refuse);
    }

    RecipientPlan recipients = plan_recipients(directory, settings, facts.recipients);
    if (facts.recipients_dropped > 0)
        note(plan, Severity::Warning,
             fmt::format("more than {} recipients: {} left out of the route", max_recipients,
                         facts.recipients_dropped));
    if (directory_in_doubt(plan, recipients, settings))
        return refused(std::move(plan), Severity::Warning,
                       fmt::format("reject: directory unavailable for {} recipient(s): 451 4.3.0",
                                   recipients.tempfails.size()),
                       directory_tempfail_reply());

    // A trusted client's loop guard decides after the recipients are resolved:
    // whether the loop is over depends on where they go now and on this
    // host's generation.
    const LoopContext here{recipients.generation, settings.role == Role::Unit && recipients.elsewhere.empty() &&
                                                      recipients.tempfails.empty() && !facts.recipients.empty()};
    if (facts.trusted) {
        verdict = check_headers(facts.headers, true, settings.max_hops, here);
        if (verdict.refuse)
            return refused(std::move(plan), Severity::Warning,
                           fmt::format("reject: routing loop: hop {} from client={} reaches max_hops {}: {} {} {}",
                                       verdict.incoming, facts.client, settings.max_hops, verdict.refuse->code,
                                       verdict.refuse->xcode, verdict.refuse->text),
                           *verdict.refuse);
        if (facts.headers.routes_flooded())
            note(plan, Severity::Warning,
                 fmt::format("{} {} headers from trusted client={}, more than max_stripped_headers ({}) besides the "
                             "first: the first changed, the others kept",
                             facts.headers.route_count(), facts.headers.route_name(), facts.client,
                             facts.headers.max_stripped()));
    }
    if (verdict.released) {
        plan.loop_released = true;
        note(plan, Severity::Info,
             fmt::format("routing loop over at hop {} from client={}: {}: accepted", verdict.incoming, facts.client,
                         here.delivered_here ? std::string("every recipient is delivered on this unit")
                                             : fmt::format("directory generation {} has caught up with the route's",
                                                           recipients.generation)));
    }
    if (recipients.too_many)
        return refused(std::move(plan), Severity::Error,
                       fmt::format("alias expansion above {} recipients: 451 4.3.0", max_added_recipients),
                       {"451", "4.3.0", "Alias expansion too large"});
    for (const auto& u : recipients.unsafe)
        note(plan, Severity::Warning, fmt::format("alias: {}: unfit for the envelope, skipped", u));
    for (const auto& e : recipients.elsewhere)
        note(plan, Severity::Info, fmt::format("not on unit {}: {}: back to the MX pool", settings.unit, e));

    plan.route = route_value(recipients, settings, verdict.outgoing);
    plan.header_edits = plan_headers(facts.headers, facts.trusted, plan.route);
    plan.expansions = std::move(recipients.expansions);
    return plan;
}

}  // namespace unit::milter
