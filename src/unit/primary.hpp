// primary.hpp: the primary (writable) database, as unitctl edits it.
//
// Primary owns one read-write SQLite connection in WAL mode with foreign
// keys on. Every call is one transaction: it either completes or changes
// nothing. Addresses and domains are normalised (address.hpp) before they
// are stored; the local part of an alias target outside the served domains
// keeps its case (its domain is lowercased like every domain).
// meta.generation is bumped by the schema's triggers, not by this code.
//
// Outcomes of the calls, besides success:
//   Errc::Invalid     a value is malformed (address, domain, nexthop, CSV row)
//   Errc::NotFound    an object named by the call does not exist
//   Errc::Conflict    the call contradicts the data (duplicate, domain not
//                     served, unit still has mailboxes, move to the same
//                     unit, new mailbox on a draining unit, ...)
//   Errc::Unavailable the database is locked or cannot be opened
//   Errc::Corrupt     the file is not a unitpolicy database of a supported
//                     schema version
//   Errc::Io          writing a snapshot failed
// Messages are one line, without the program name. No exception escapes.
// Thread safety: one Primary per thread. Logs nothing.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "unit/export.hpp"
#include "unit/records.hpp"
#include "unit/result.hpp"

namespace unit {

namespace detail { struct PrimaryDb; }

struct UnitSummary {
    UnitRecord unit;
    std::int64_t mailboxes = 0;  // mailboxes whose unit is this one
};

struct UnitChange {
    std::optional<UnitState> state;
    std::optional<std::string> nexthop;
    std::optional<std::string> transport;
};

struct ImportStats {
    std::int64_t domains = 0, units = 0, mailboxes = 0, aliases = 0;
};

struct PublishInfo {
    std::string path;
    std::int64_t generation = 0;
    std::string published_at;  // ISO 8601 UTC, as stored in meta.published_at
};

class UNIT_EXPORT Primary {
public:
    // Opens an existing database; Errc::Corrupt when its schema version is
    // missing or newer than this build supports, Errc::NotFound when the
    // file does not exist.
    static Result<Primary> open(const std::string& path) noexcept;
    // Creates the database, or upgrades an older one, by applying the
    // numbered migrations it lacks (each in one transaction).
    static Result<Primary> init(const std::string& path) noexcept;

    Primary(Primary&&) noexcept;
    Primary& operator=(Primary&&) noexcept;
    ~Primary();

    Result<int> schema_version() noexcept;
    Result<std::int64_t> generation() noexcept;

    Result<void> add_domain(const std::string& domain) noexcept;
    Result<void> remove_domain(const std::string& domain) noexcept;  // Conflict while mailboxes or aliases use it
    Result<std::vector<std::string>> domains() noexcept;

    Result<void> add_unit(const UnitRecord& unit) noexcept;
    Result<void> change_unit(const std::string& name, const UnitChange& change) noexcept;
    Result<void> remove_unit(const std::string& name) noexcept;  // Conflict while mailboxes use it
    Result<std::vector<UnitSummary>> units() noexcept;

    Result<void> add_mailbox(const std::string& address, const std::string& unit) noexcept;
    // Active, Suspended or Disabled; Conflict during a move.
    Result<void> set_mailbox_state(const std::string& address, MailboxState state) noexcept;
    Result<void> remove_mailbox(const std::string& address) noexcept;
    Result<MailboxRecord> mailbox(const std::string& address) noexcept;
    Result<std::vector<MailboxRecord>> mailboxes(const std::optional<std::string>& unit) noexcept;

    Result<void> begin_move(const std::string& address, const std::string& to_unit) noexcept;
    Result<void> finish_move(const std::string& address) noexcept;  // the mailbox now lives on moving_to
    Result<void> abort_move(const std::string& address) noexcept;   // the mailbox stays where it was

    Result<void> add_alias(const std::string& address, const std::vector<std::string>& targets) noexcept;
    // Removes one target, or every target of the address when none is given.
    Result<void> remove_alias(const std::string& address, const std::optional<std::string>& target) noexcept;
    Result<std::vector<AliasRecord>> aliases() noexcept;

    // Imports a CSV file (csv.hpp) in one transaction. A bad row fails the
    // whole import with "SOURCE:LINE: problem" and changes nothing.
    Result<ImportStats> import_csv(std::istream& in, const std::string& source) noexcept;
    // Writes every object as CSV; importing it into an empty database gives
    // back the same data.
    Result<void> export_csv(std::ostream& out) noexcept;

    // Integrity and invariant check: an empty list means healthy. Reports
    // integrity_check failures, mailboxes or moves on unknown units, moving
    // without moving_to, addresses outside the served domains, unnormalised
    // keys, alias cycles and aliases deeper than the resolver follows.
    Result<std::vector<std::string>> check() noexcept;

    // Writes a consistent snapshot in rollback-journal mode to a temporary
    // file beside `out`, stamps meta.published_at, verifies it, fsyncs it
    // and its directory, and renames it onto `out`. Its mtime is at least a
    // whole second after the file it replaces, so `rsync -t` never takes a
    // new snapshot for the old one.
    Result<PublishInfo> publish(const std::string& out) noexcept;

private:
    explicit Primary(std::unique_ptr<detail::PrimaryDb> db) noexcept;
    std::unique_ptr<detail::PrimaryDb> db_;
};

}  // namespace unit
