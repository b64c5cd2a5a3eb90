import Foundation

/// Reads `Authorization: Bearer <token>` style values, the one place the scheme is parsed.
public enum BearerToken {
    /// The token of a `Bearer <token>` value (scheme in any case), or nil without the scheme.
    public static func token(_ value: String) -> String? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bearer ") else { return nil }
        return String(trimmed.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }
}
