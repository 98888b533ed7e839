// cmd_mailbox.cpp: mailbox add|set|rm|show|list.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <ostream>

#include "common/json_writer.hpp"
#include "ctl/command.hpp"

namespace po = boost::program_options;

namespace unit::ctl {

namespace {

void declare_add(po::options_description& options) {
    options.add_options()("unit", po::value<std::string>()->value_name("NAME")->required(), "the unit holding it");
}

void declare_set(po::options_description& options) {
    // clang-format off
    options.add_options()
        ("state", po::value<std::string>()->value_name("STATE")->required(), "active, suspended or disabled");
    // clang-format on
}

void declare_list(po::options_description& options) {
    options.add_options()("unit", po::value<std::string>()->value_name("NAME"), "only the mailboxes of this unit");
    declare_json(options);
}

// "moving" is not settable: a move has a target, and only `move begin` gives one.
MailboxState settable_state_or_usage(const std::string& text) {
    const auto state = parse_mailbox_state(text);
    if (state && *state != MailboxState::Moving) return *state;
    throw UsageError(fmt::format("mailbox set: bad --state '{}' (expected active, suspended or disabled)", text));
}

// The state column of a listing, spelled as in the CSV: "moving:UNIT" for a move.
std::string state_column(const MailboxRecord& mailbox) {
    if (mailbox.state == MailboxState::Moving) return fmt::format("moving:{}", mailbox.moving_to);
    return std::string(to_string(mailbox.state));
}

// A mailbox as JSON: the state alone ("moving"), and moving_to apart, null
// unless it moves.
std::string mailbox_json(const MailboxRecord& mailbox) {
    common::JsonObject object;
    object.string("address", mailbox.address).string("unit", mailbox.unit).string("state", to_string(mailbox.state));
    if (mailbox.state == MailboxState::Moving) object.string("moving_to", mailbox.moving_to);
    else object.null("moving_to");
    return object.text();
}

void run_add(Invocation& inv) { unwrap(open_for_writing(inv).add_mailbox(inv.operands[0], *inv.option("unit"))); }

void run_set(Invocation& inv) {
    const auto state = settable_state_or_usage(*inv.option("state"));
    unwrap(open_for_writing(inv).set_mailbox_state(inv.operands[0], state));
}

void run_rm(Invocation& inv) { unwrap(open_for_writing(inv).remove_mailbox(inv.operands[0])); }

void run_show(Invocation& inv) {
    const auto mailbox = unwrap(open_primary(inv).mailbox(inv.operands[0]));
    if (json_output(inv)) {
        inv.out << mailbox_json(mailbox) << '\n';
        return;
    }
    inv.out << fmt::format("address: {}\nunit: {}\nstate: {}\n", mailbox.address, mailbox.unit,
                           to_string(mailbox.state));
    if (mailbox.state == MailboxState::Moving) inv.out << fmt::format("moving_to: {}\n", mailbox.moving_to);
}

void run_list(Invocation& inv) {
    auto mailboxes = unwrap(open_primary(inv).mailboxes(inv.option("unit")));
    std::sort(mailboxes.begin(), mailboxes.end(), [](const auto& a, const auto& b) { return a.address < b.address; });
    if (!json_output(inv)) {
        for (const auto& mailbox : mailboxes)
            inv.out << fmt::format("{}\t{}\t{}\n", mailbox.address, mailbox.unit, state_column(mailbox));
        return;
    }
    common::JsonArrayWriter array(inv.out);
    for (const auto& mailbox : mailboxes) array.add(mailbox_json(mailbox));
    array.close();
}

constexpr std::array<Command, 5> commands{{
    {"mailbox add", "ADDRESS", "--unit NAME", "add a mailbox on a unit", declare_add, run_add},
    {"mailbox set", "ADDRESS", "--state active|suspended|disabled", "change a mailbox's state", declare_set, run_set},
    {"mailbox rm", "ADDRESS", "", "remove a mailbox", nullptr, run_rm},
    {"mailbox show", "ADDRESS", "[--json]", "show a mailbox: address, unit, state, moving_to", declare_json, run_show},
    {"mailbox list", "", "[--unit NAME] [--json]", "list mailboxes: address, unit, state", declare_list, run_list},
}};

}  // namespace

std::span<const Command> mailbox_commands() noexcept { return commands; }

}  // namespace unit::ctl
