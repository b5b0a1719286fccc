namespace Escrow.Sandbox;

/// <summary>Configuration of the local Stripe and Postmark emulators.</summary>
public sealed class SandboxOptions
{
    /// <summary>Name of the <see cref="System.Net.Http.HttpClient"/> that delivers Stripe webhooks.</summary>
    public const string WebhookHttpClientName = "Escrow.Sandbox.Webhooks";

    /// <summary>Required: the webhook signing secret ("whsec_..."), shared with the webhook receiver.</summary>
    public string WebhookSecret { get; set; } = string.Empty;

    /// <summary>
    /// Required: the signing secret of the Connect endpoint ("whsec_..."). Events of connected accounts
    /// (<c>account.updated</c>, <c>capability.updated</c>) are signed with it, and only with it, as Stripe does. Several
    /// secrets separated by commas sign each event with each (Stripe's rotation window).
    /// </summary>
    public string ConnectWebhookSecret { get; set; } = string.Empty;

    /// <summary>The platform's country: an Express account of another country needs the recipient service agreement.</summary>
    public string PlatformCountry { get; set; } = "FR";

    /// <summary>Requests per calendar second the emulated API answers before it answers 429, as Stripe does. 0 = no limit.</summary>
    public int RateLimitPerSecond { get; set; }

    /// <summary>How long a held card authorisation lasts before the sandbox expires it (Stripe: 7 days for online cards).</summary>
    public TimeSpan AuthorisationLifetime { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How long an account link can be opened (Stripe: a few minutes).</summary>
    public TimeSpan AccountLinkLifetime { get; set; } = TimeSpan.FromSeconds(300);

    /// <summary>Where events are POSTed. Null: the running server's first address + "/webhooks/stripe".</summary>
    public Uri? WebhookUrl { get; set; }

    /// <summary>The HTTP Basic credentials the simulated inbound e-mails are delivered with (Postmark's inbound webhook URL carries them).</summary>
    public string PostmarkInboundUsername { get; set; } = string.Empty;

    public string PostmarkInboundPassword { get; set; } = string.Empty;

    /// <summary>The token expected in <c>X-Postmark-Server-Token</c>. Empty: any non-empty token is accepted.</summary>
    public string PostmarkServerToken { get; set; } = string.Empty;

    /// <summary>
    /// A PostgreSQL connection string: the emulators keep their objects there (schema <c>escrow_sandbox</c>) and find
    /// them again after a restart. Null: in memory only.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>The API version written into events.</summary>
    public string ApiVersion { get; set; } = "2026-10-28.endive";

    /// <summary>Whether new events are delivered to <see cref="WebhookUrl"/> automatically.</summary>
    public bool DeliverWebhooks { get; set; } = true;

    /// <summary>
    /// Events delivered at the same time, like Stripe, which sends events in parallel and in no guaranteed order. One
    /// delivery at a time fell behind under load (each waits for the escrow it concerns) and went on draining long after.
    /// </summary>
    public int WebhookDeliveryConcurrency { get; set; } = 4;

    /// <summary>Total delivery attempts per event (first attempt included) before giving up.</summary>
    public int WebhookMaxAttempts { get; set; } = 8;

    /// <summary>Delay before the first retry; doubled for each later retry.</summary>
    public TimeSpan WebhookFirstRetryDelay { get; set; } = TimeSpan.FromSeconds(1);
}
