namespace Escrow.Grains;

/// <summary>
/// The long-lived <c>/onboarding/{recipientId}?t=TOKEN</c> links that e-mails carry instead of Stripe's account links,
/// which are single-use and expire in minutes. The token is <c>{expiresUnix}.{HMAC}</c> over the recipient id and the
/// expiry, so it names one recipient and cannot be extended.
/// </summary>
public sealed class OnboardingLinks(IOptions<PublicLinkOptions> options, IOptions<StripeOptions> stripe, TimeProvider clock)
{
    /// <summary>Where a process with no <c>Api:PublicBaseUrl</c> assumes it is: Escrow.Api's default address.</summary>
    public const string DefaultBaseUrl = "http://127.0.0.1:5080";

    private readonly byte[] _key = KeyOf(options.Value, stripe.Value);

    public string BaseUrl => (options.Value.PublicBaseUrl ?? DefaultBaseUrl).TrimEnd('/');

    /// <summary>
    /// The sender's status page. The access token rides in the fragment, which a browser never sends: it reaches no
    /// server log, and the page's script hands it to the API.
    /// </summary>
    public string StatusPage(Guid escrowId, string accessToken) => $"{BaseUrl}/e/{escrowId:D}#t={Uri.EscapeDataString(accessToken)}";

    /// <summary>The link for an e-mail: opening it mints a fresh Stripe account link.</summary>
    public string Start(string recipientId) => Url(recipientId, "");

    /// <summary>Stripe's refresh_url: where a used or expired account link sends the recipient.</summary>
    public string Refresh(string recipientId) => Url(recipientId, "/refresh");

    /// <summary>Stripe's return_url: the page that says whether payouts are ready.</summary>
    public string Done(string recipientId) => Url(recipientId, "/done");

    public string Token(string recipientId)
    {
        var expires = (clock.GetUtcNow() + options.Value.OnboardingLinkLifetime).ToUnixTimeSeconds();
        return $"{expires.ToString(CultureInfo.InvariantCulture)}.{Mac(recipientId, expires)}";
    }

    /// <summary>Whether <paramref name="token"/> was made here for this recipient and has not expired.</summary>
    public bool IsValid(string recipientId, string? token)
    {
        var dot = token?.IndexOf('.', StringComparison.Ordinal) ?? -1;
        if (dot <= 0 || !long.TryParse(token.AsSpan(0, dot), NumberStyles.None, CultureInfo.InvariantCulture, out var expires)
            || expires <= clock.GetUtcNow().ToUnixTimeSeconds())
        {
            return false;
        }
        var expected = Encoding.ASCII.GetBytes(Mac(recipientId, expires));
        var given = Encoding.ASCII.GetBytes(token![(dot + 1)..]);
        return CryptographicOperations.FixedTimeEquals(expected, given);
    }

    private string Url(string recipientId, string suffix) =>
        $"{BaseUrl}/onboarding/{Uri.EscapeDataString(recipientId)}{suffix}?t={Uri.EscapeDataString(Token(recipientId))}";

    private string Mac(string recipientId, long expires)
    {
        var mac = HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes($"onboarding\n{recipientId}\n{expires.ToString(CultureInfo.InvariantCulture)}"));
        return Convert.ToBase64String(mac).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    private static byte[] KeyOf(PublicLinkOptions links, StripeOptions stripe)
    {
        if (!string.IsNullOrEmpty(links.OnboardingTokenSecret))
        {
            return Encoding.UTF8.GetBytes(links.OnboardingTokenSecret);
        }
        var webhookSecret = StripeOptions.Secrets(stripe.WebhookSecret).FirstOrDefault() ?? "";
        return HMACSHA256.HashData(Encoding.UTF8.GetBytes(webhookSecret), "escrow onboarding tokens"u8);
    }
}
