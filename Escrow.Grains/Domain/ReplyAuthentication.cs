using System.Text.RegularExpressions;

namespace Escrow.Grains.Domain;

/// <summary>
/// Whether an e-mail reply really comes from its From domain, by the verdicts the receiving server wrote into its
/// headers (RFC 8601 Authentication-Results, RFC 7208 Received-SPF). Only the topmost header of each kind counts: the
/// receiving server adds its own above everything the sender wrote, so a verdict forged in the message lies below it.
/// A reply is refused when DMARC failed, or when SPF failed and no DKIM signature of the From domain passed.
/// </summary>
public static partial class ReplyAuthentication
{
    public const string NotAuthenticated = "sender_not_authenticated";

    /// <summary>Null when the reply may count; otherwise why it may not.</summary>
    /// <param name="headers">The message's headers in order, topmost first.</param>
    public static string? Refusal(IReadOnlyList<(string Name, string Value)> headers, string fromAddress)
    {
        var fromDomain = fromAddress[(fromAddress.LastIndexOf('@') + 1)..].Trim().TrimEnd('>').ToLowerInvariant();
        var results = First(headers, "Authentication-Results");
        var receivedSpf = First(headers, "Received-SPF");
        var clauses = results is null ? [] : Clauses(results);
        if (clauses.Any(c => c.Method == "dmarc" && c.Result == "fail"))
        {
            return "dmarc=fail";
        }
        var spf = clauses.FirstOrDefault(c => c.Method == "spf").Result ?? SpfOf(receivedSpf);
        if (spf is "fail" or "softfail" && !clauses.Any(c => c.Method == "dkim" && c.Result == "pass" && Aligned(c.Domain, fromDomain)))
        {
            return $"spf={spf} without a dkim pass for {fromDomain}";
        }
        return null;
    }

    private static string? First(IReadOnlyList<(string Name, string Value)> headers, string name) =>
        headers.FirstOrDefault(h => string.Equals(h.Name, name, StringComparison.OrdinalIgnoreCase)).Value;

    /// <summary>Relaxed alignment (RFC 7489): the signing domain is the From domain or a parent of it.</summary>
    private static bool Aligned(string? signingDomain, string fromDomain) =>
        signingDomain is { Length: > 0 } d && (fromDomain == d || fromDomain.EndsWith("." + d, StringComparison.Ordinal));

    private static string? SpfOf(string? receivedSpf) =>
        receivedSpf is null ? null : SpfResult().Match(receivedSpf) is { Success: true } m ? m.Groups[1].Value.ToLowerInvariant() : null;

    private readonly record struct Clause(string Method, string Result, string? Domain);

    /// <summary>The "method=result ... header.d=domain" clauses after the authserv-id, comments removed.</summary>
    private static List<Clause> Clauses(string value)
    {
        var text = Comment().Replace(value, " ");
        var parts = text.Split(';');
        var clauses = new List<Clause>();
        foreach (var part in parts.Skip(1))
        {
            var m = MethodResult().Match(part);
            if (!m.Success)
            {
                continue;
            }
            var domain = HeaderD().Match(part) is { Success: true } d ? d.Groups[1].Value
                : HeaderI().Match(part) is { Success: true } i ? i.Groups[1].Value
                : null;
            clauses.Add(new Clause(m.Groups[1].Value.ToLowerInvariant(), m.Groups[2].Value.ToLowerInvariant(), domain?.ToLowerInvariant()));
        }
        return clauses;
    }

    [GeneratedRegex(@"\([^()]*\)", RegexOptions.CultureInvariant)]
    private static partial Regex Comment();

    [GeneratedRegex(@"^\s*([A-Za-z0-9_-]+)\s*=\s*([A-Za-z]+)", RegexOptions.CultureInvariant)]
    private static partial Regex MethodResult();

    [GeneratedRegex(@"header\.d\s*=\s*([A-Za-z0-9.-]+)", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex HeaderD();

    [GeneratedRegex(@"header\.i\s*=\s*[^@\s;]*@([A-Za-z0-9.-]+)", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex HeaderI();

    [GeneratedRegex(@"^\s*([A-Za-z]+)", RegexOptions.CultureInvariant)]
    private static partial Regex SpfResult();
}
