import Synchronization

/// Keeps the metric handles for each label combination, so recording a request costs one
/// dictionary lookup instead of a metrics-factory lookup per counter and timer.
///
/// At most `maxEntries` combinations are kept: past that, new ones are recorded under
/// `overflow` (whose labels read `other`), so values that come from outside can never grow
/// `/metrics` or the process without bound.
public final class MetricHandleCache<Key: Hashable & Sendable, Handles: Sendable>: Sendable {
    private let handles = Mutex<[Key: Handles]>([:])
    private let make: @Sendable (Key) -> Handles
    private let maxEntries: Int
    private let overflow: Key?

    public init(maxEntries: Int = 5_000, overflow: Key? = nil, _ make: @escaping @Sendable (Key) -> Handles) {
        self.make = make
        self.maxEntries = maxEntries
        self.overflow = overflow
    }

    public func callAsFunction(_ key: Key) -> Handles {
        let (existing, chosen) = handles.withLock { dictionary -> (Handles?, Key) in
            if let found = dictionary[key] { return (found, key) }
            if dictionary.count >= maxEntries, let overflow { return (dictionary[overflow], overflow) }
            return (nil, key)
        }
        if let existing { return existing }
        let created = make(chosen)
        return handles.withLock { dictionary in
            if let raced = dictionary[chosen] { return raced }
            // Without an overflow key the handles still work; they are just not kept.
            if dictionary.count < maxEntries || chosen == overflow { dictionary[chosen] = created }
            return created
        }
    }
}

/// The values one metric label may take when they come from outside (model and project names,
/// methods): cleaned for the exposition format and bounded in number. The first `limit`
/// distinct values are kept as they are; later ones read `other`.
///
/// swift-prometheus escapes `\`, `"` and line feeds in label values; what it passes through raw
/// (NUL and other control characters) is replaced here, and values are cut to `maxLength`.
public final class MetricLabelValues: Sendable {
    public static let other = "other"
    private let seen = Mutex<Set<String>>([])
    public let limit: Int
    public let maxLength: Int

    public init(limit: Int = 100, maxLength: Int = 96) {
        self.limit = limit
        self.maxLength = maxLength
    }

    /// The label value to record for `value`.
    public func callAsFunction(_ value: String) -> String {
        let clean = Self.clean(value, maxLength: maxLength)
        return seen.withLock { seen in
            if seen.contains(clean) { return clean }
            guard seen.count < limit else { return Self.other }
            seen.insert(clean)
            return clean
        }
    }

    /// `value` without control characters other than line feed (each becomes U+FFFD), at most
    /// `maxLength` characters.
    public static func clean(_ value: String, maxLength: Int) -> String {
        var scalars = String.UnicodeScalarView()
        var count = 0
        for scalar in value.unicodeScalars {
            if count >= maxLength { break }
            let v = scalar.value
            let control = (v < 0x20 && v != 0x0A) || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029
            scalars.append(control ? "\u{FFFD}" : scalar)
            count += 1
        }
        return String(scalars)
    }
}
