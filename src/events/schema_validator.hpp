#pragma once

// JSON Schema (draft 7) validation of event messages against the files in schemas/
// (schemas/<kind>/v<N>.schema.json, one file per published version: docs/schemas.md).
// The hot path uses the hand-written parsers in events.hpp; this exists so tests (and
// tooling) can prove that what we produce matches the published contract.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace taskstream::events {

class SchemaValidator final {
public:
    // Throws std::runtime_error if the file cannot be read, is not JSON, or is not a
    // schema valijson can compile.
    explicit SchemaValidator(const std::filesystem::path& schema_file);
    ~SchemaValidator();

    SchemaValidator(const SchemaValidator&) = delete;
    SchemaValidator& operator=(const SchemaValidator&) = delete;
    SchemaValidator(SchemaValidator&&) noexcept;
    SchemaValidator& operator=(SchemaValidator&&) noexcept;

    // kind: "task-event" | "task-update" | "notification-request"; loads the highest
    // version present, TASKSTREAM_SCHEMA_DIR/<kind>/v<N>.schema.json. Throws
    // std::invalid_argument for another kind, std::runtime_error when no version exists.
    [[nodiscard]] static SchemaValidator for_topic_kind(std::string_view kind);

    // TASKSTREAM_SCHEMA_DIR/<kind>/v<version>.schema.json. Throws std::invalid_argument for
    // an unknown kind or a version below 1, std::runtime_error when the file is missing.
    [[nodiscard]] static SchemaValidator for_version(std::string_view kind, int version);

    // The highest N with a TASKSTREAM_SCHEMA_DIR/<kind>/v<N>.schema.json (throws as for_topic_kind).
    [[nodiscard]] static int latest_version(std::string_view kind);

    // One "<path>: <problem>" line per violation; empty means valid. Thread-safe.
    [[nodiscard]] std::vector<std::string> validate(const nlohmann::json& document) const;

    [[nodiscard]] const std::filesystem::path& schema_file() const noexcept { return schema_file_; }

private:
    struct Impl;
    std::filesystem::path schema_file_;
    // Pimpl keeps valijson (and the exception mode it must be compiled with) out of
    // every translation unit that includes this header.
    std::unique_ptr<Impl> impl_;
};

}  // namespace taskstream::events
