import GatehouseCore

/// Where a requested model goes: which provider, and the model name that provider expects.
public struct RoutedModel: Sendable, Equatable {
    public var provider: ProviderConfig
    public var upstreamModel: String
    /// Share of load within its priority tier (aliases with several deployments).
    public var weight: Int = 1
    /// Lower tiers are tried first; later tiers are fallbacks.
    public var priority: Int = 0

    /// The breaker's name for this deployment.
    var deploymentName: String { "\(provider.name)/\(upstreamModel)" }
}

public enum RoutingError: Error, Equatable, CustomStringConvertible {
    case unknownProvider(model: String, provider: String)
    case noProvider(model: String)

    public var description: String {
        switch self {
        case let .unknownProvider(model, provider):
            "The model `\(model)` does not exist: no provider named \"\(provider)\" is configured"
        case let .noProvider(model):
            "The model `\(model)` does not exist: name it as provider/model (for example mock/\(model)) or configure an alias"
        }
    }
}

/// Resolves `provider/model`, aliases, and bare model names.
///
/// Order: an alias; then `provider/model` when the prefix names a configured provider; then a
/// bare name routed to the one provider of the kind that serves it (`gpt-*`, `o1*`… to OpenAI,
/// `claude-*` to Anthropic), when exactly one such provider exists.
public struct ModelRouter: Sendable {
    private let providers: [String: ProviderConfig]
    private let aliases: [String: [ModelAlias.Deployment]]
    private let ordered: [ProviderConfig]

    public init(config: GatehouseConfig) {
        var byName: [String: ProviderConfig] = [:]
        for p in config.providers { byName[p.name] = p }
        providers = byName
        ordered = config.providers
        aliases = Dictionary(config.aliases.map { ($0.alias, $0.deployments) }, uniquingKeysWith: { _, last in last })
    }

    /// Every deployment a requested model may go to: an alias's deployments, or the one target.
    public func candidates(_ requested: String) throws -> [RoutedModel] {
        guard let deployments = aliases[requested], !deployments.isEmpty else { return [try resolve(requested, as: requested)] }
        return try deployments.map { d in
            var routed = try resolve(d.target, as: requested)
            routed.weight = d.weight
            routed.priority = d.priority
            return routed
        }
    }

    /// The first deployment of `requested`.
    public func route(_ requested: String) throws -> RoutedModel {
        try candidates(requested)[0]
    }

    private func resolve(_ target: String, as requested: String) throws -> RoutedModel {
        if let slash = target.firstIndex(of: "/") {
            let prefix = String(target[..<slash])
            let rest = String(target[target.index(after: slash)...])
            if let provider = providers[prefix], !rest.isEmpty {
                return RoutedModel(provider: provider, upstreamModel: rest)
            }
            // "meta-llama/Llama-3" on an OpenAI-compatible server: the whole name is the model.
            if let only = soleOpenAICompatibleProvider() {
                return RoutedModel(provider: only, upstreamModel: target)
            }
            throw RoutingError.unknownProvider(model: requested, provider: prefix)
        }
        let lower = target.lowercased()
        let kind: ProviderConfig.Kind? =
            lower.hasPrefix("claude") ? .anthropic
            : ["gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "davinci", "babbage", "omni-"].contains(where: lower.hasPrefix) ? .openAI
            : nil
        if let kind {
            let candidates = ordered.filter { $0.kind == kind }
            if candidates.count == 1 { return RoutedModel(provider: candidates[0], upstreamModel: target) }
        }
        throw RoutingError.noProvider(model: requested)
    }

    private func soleOpenAICompatibleProvider() -> ProviderConfig? {
        let compatible = ordered.filter { $0.kind == .openAICompatible }
        return compatible.count == 1 ? compatible[0] : nil
    }

    /// Model ids for `/v1/models`: aliases, then each provider's priced models as provider/model.
    public func listedModels(prices: PriceTable) -> [(id: String, ownedBy: String)] {
        var result: [(String, String)] = aliases.keys.sorted().map { ($0, "gatehouse") }
        for provider in ordered {
            let priceProvider = provider.effectivePriceProvider
            let names: [String]
            switch provider.kind {
            case .mock:
                names = ["gpt-4o-mini", "claude-sonnet-4-5", "text-embedding-3-small", "echo"]
            default:
                names = prices.prices.filter { $0.provider == priceProvider }.map(\.model)
            }
            result += names.map { ("\(provider.name)/\($0)", provider.name) }
        }
        return result
    }
}
