#include "unit/snapshot_reports.hpp"

#include <fmt/format.h>

#include <optional>
#include <string>

namespace unit {

std::time_t detail::age_origin(const SnapshotInfo& info) noexcept {
    return info.published_at ? *info.published_at : static_cast<std::time_t>(info.file.mtime_ns / 1'000'000'000);
}

std::optional<std::string> refusal_to_report(const DirectoryStatus& status, ValidationCache* cache) {
    const auto& refused = status.refused;
    if (!refused || (cache != nullptr && !cache->first_report(refused->file, refused->reason))) return std::nullopt;
    std::string text = fmt::format("{}: {}: {}", status.path, to_string(refused->reason), refused->message);
    if (status.serving) text += fmt::format(" (serving generation {})", status.snapshot.generation);
    return text;
}

std::optional<std::string> clock_skew_to_report(const DirectoryStatus& status, ValidationCache* cache,
                                                std::time_t now) {
    const auto& snapshot = status.snapshot;
    if (!status.serving || detail::age_origin(snapshot) - now <= max_clock_skew_seconds) return std::nullopt;
    if (cache != nullptr && !cache->first_notice(snapshot.file, "clock_skew")) return std::nullopt;
    return fmt::format(
        "{}: generation {} was published {} s in the future ({}, more than the {} s of clock skew "
        "allowed): its age is unknown, so it counts as older than reject_max_age and max_replica_age",
        status.path, snapshot.generation, detail::age_origin(snapshot) - now,
        snapshot.published_at ? "published_at" : "its modification time", max_clock_skew_seconds);
}

}  // namespace unit
