/// A figure card of the overview and spend pages: the range's value and its change from the
/// range before.
struct KPI {
    var label: String
    var value: String
    var trend: String
    var direction: String
    /// "goodwhenup" where more is better (requests), so colours read right.
    var tone: String

    /// `current` against `previous`; nil `previous` (a figure the range before was not read for)
    /// shows no trend.
    init(_ label: String, _ value: String, _ current: Double, _ previous: Double?, goodWhenUp: Bool = false) {
        self.label = label
        self.value = value
        guard let previous else {
            (trend, direction, tone) = ("", "", "")
            return
        }
        let change = Format.trend(current, previous)
        (trend, direction, tone) = (change.text, change.direction, goodWhenUp ? "goodwhenup" : "")
    }
}
