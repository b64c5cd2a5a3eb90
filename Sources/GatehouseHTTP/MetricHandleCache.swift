import Synchronization

/// Keeps the metric handles for each label combination, so recording a request costs one
/// dictionary lookup instead of a metrics-factory lookup per counter and timer.
public final class MetricHandleCache<Key: Hashable & Sendable, Handles: Sendable>: Sendable {
    private let handles = Mutex<[Key: Handles]>([:])
    private let make: @Sendable (Key) -> Handles

    public init(_ make: @escaping @Sendable (Key) -> Handles) { self.make = make }

    public func callAsFunction(_ key: Key) -> Handles {
        if let existing = handles.withLock({ $0[key] }) { return existing }
        let created = make(key)
        return handles.withLock { dictionary in
            if let raced = dictionary[key] { return raced }
            dictionary[key] = created
            return created
        }
    }
}
