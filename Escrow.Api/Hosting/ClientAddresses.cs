using System.Net;
using System.Net.Sockets;

namespace Escrow.Api.Hosting;

/// <summary>The proxies whose X-Forwarded-For is believed (section "Api"): addresses or CIDR networks.</summary>
public sealed class ClientAddressOptions
{
    public const string Section = "Api";

    public List<string> TrustedProxies { get; set; } = [];
}

public sealed class ClientAddressOptionsValidator : IValidateOptions<ClientAddressOptions>
{
    public ValidateOptionsResult Validate(string? name, ClientAddressOptions o) => new Escrow.Grains.OptionsErrors()
        .If(!o.TrustedProxies.All(p => ClientAddresses.TryParseNetwork(p, out _)),
            "Api:TrustedProxies: every entry must be an IP address or a CIDR network such as 10.0.0.0/8.")
        .Result();
}

/// <summary>
/// Who a request comes from, for rate limits and the card-testing guard. X-Forwarded-For is read only when the peer is
/// a trusted proxy, and then from the right, past every trusted hop: anyone else can write that header. IPv6 clients
/// are counted per /64, the block one subscriber is usually given, so one host cannot rotate past a limit.
/// </summary>
public sealed class ClientAddresses
{
    public const string ForwardedFor = "X-Forwarded-For";

    private readonly IPNetwork[] _trusted;

    public ClientAddresses(IOptions<ClientAddressOptions> options)
    {
        _trusted = [.. options.Value.TrustedProxies.Select(p => TryParseNetwork(p, out var n) ? n : throw new OptionsValidationException("Api", typeof(ClientAddressOptions), [ProblemWith(p)]))];
    }

    public static string ProblemWith(string entry) =>
        $"Api:TrustedProxies has '{entry}', which is neither an IP address nor a CIDR network such as 10.0.0.0/8 or 2001:db8::/32.";

    public static bool TryParseNetwork(string entry, out IPNetwork network)
    {
        var text = entry.Trim();
        if (IPAddress.TryParse(text, out var address) && !text.Contains('/', StringComparison.Ordinal))
        {
            address = Canonical(address);
            network = new IPNetwork(address, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
            return true;
        }
        return IPNetwork.TryParse(text, out network);
    }

    /// <summary>The client's address: the peer, or behind trusted proxies the first untrusted hop from the right.</summary>
    public IPAddress? ClientOf(HttpContext http)
    {
        var current = http.Connection.RemoteIpAddress is { } peer ? Canonical(peer) : null;
        if (current is null || !IsTrusted(current))
        {
            return current;
        }
        var hops = http.Request.Headers[ForwardedFor].SelectMany(v => (v ?? "").Split(',')).ToArray();
        for (var i = hops.Length - 1; i >= 0; i--)
        {
            if (!IPAddress.TryParse(hops[i].Trim(), out var hop))
            {
                // A hop no proxy would write: the last trusted proxy is as far as the chain can be believed.
                return current;
            }
            current = Canonical(hop);
            if (!IsTrusted(current))
            {
                return current;
            }
        }
        return current;
    }

    /// <summary>The rate-limit partition of the client: its IPv4 address, or its IPv6 /64.</summary>
    public string PartitionOf(HttpContext http) => ClientOf(http) switch
    {
        null => "unknown",
        { AddressFamily: AddressFamily.InterNetworkV6 } v6 => Prefix64(v6),
        var v4 => v4.ToString(),
    };

    private bool IsTrusted(IPAddress address) => _trusted.Any(n => n.Contains(address));

    private static string Prefix64(IPAddress address)
    {
        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }

    private static IPAddress Canonical(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
