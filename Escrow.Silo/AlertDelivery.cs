using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Escrow.Grains.Alerts;
using Escrow.Grains.Email;

namespace Escrow.Silo;

/// <summary>Where alerts go so that a person sees them: webhooks (Slack, Mattermost, a pager) and an e-mail address.</summary>
public sealed class AlertOptions
{
    public const string Section = "Alerts";

    public List<AlertWebhookOptions> Webhooks { get; set; } = [];

    public AlertEmailOptions Email { get; set; } = new();

    /// <summary>info, warning or critical: alerts below it are kept in the alerts list only.</summary>
    public string MinimumSeverity { get; set; } = AlertSeverity.Warning;

    /// <summary>How often new alerts and due retries are looked for.</summary>
    public TimeSpan PollPeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A delivery that keeps failing is retried until this long after its alert was raised, then marked failed.</summary>
    public TimeSpan RetryFor { get; set; } = TimeSpan.FromHours(24);

    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The targets these options name, each with its stable id (a webhook's URL is hashed: its path often holds a token).</summary>
    public IReadOnlyList<AlertTarget> Targets()
    {
        var targets = Webhooks.Select(w => new AlertTarget(WebhookTargetId(w.Url), Redacted(w.Url), MinimumSeverity)).ToList();
        if (!string.IsNullOrWhiteSpace(Email.To))
        {
            targets.Add(new AlertTarget($"email:{Email.To.Trim()}", Email.To.Trim(), MinimumSeverity));
        }
        return targets.DistinctBy(t => t.Id).ToList();
    }

    public static string WebhookTargetId(string url) =>
        "webhook:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(url.Trim())))[..16];

    private static string Redacted(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) ? $"{uri.Scheme}://{uri.Authority}/…" : "(invalid URL)";
}

public sealed class AlertWebhookOptions
{
    public string Url { get; set; } = "";

    /// <summary>When set, each POST carries <c>Escrow-Signature: t=…,v1=…</c>, an HMAC-SHA256 of "t.body" with it.</summary>
    public string? Secret { get; set; }
}

public sealed class AlertEmailOptions
{
    public string? To { get; set; }
}

public sealed class AlertOptionsValidator : IValidateOptions<AlertOptions>
{
    public ValidateOptionsResult Validate(string? name, AlertOptions o)
    {
        var errors = new OptionsErrors();
        for (var i = 0; i < o.Webhooks.Count; i++)
        {
            errors
                .If(!Uri.TryCreate(o.Webhooks[i].Url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp),
                    $"Alerts:Webhooks:{i}:Url must be an absolute http(s) URL.")
                .If(o.Webhooks[i].Secret is { Length: > 0 and < 16 }, $"Alerts:Webhooks:{i}:Secret must be at least 16 characters when set.");
        }
        return errors
            .If(o.Email.To is { } to && !string.IsNullOrWhiteSpace(to) && !System.Net.Mail.MailAddress.TryCreate(to.Trim(), out _),
                "Alerts:Email:To must be one e-mail address.")
            .If(!AlertSeverity.IsKnown(o.MinimumSeverity), "Alerts:MinimumSeverity must be info, warning or critical.")
            .If(o.PollPeriod < TimeSpan.FromMilliseconds(100) || o.PollPeriod > TimeSpan.FromMinutes(10), "Alerts:PollPeriod must be 100 ms to 10 minutes.")
            .If(o.RetryFor < TimeSpan.FromMinutes(1) || o.FirstRetryDelay <= TimeSpan.Zero || o.MaxRetryDelay < o.FirstRetryDelay,
                "Alerts:RetryFor must be at least a minute, FirstRetryDelay positive and MaxRetryDelay at least FirstRetryDelay.")
            .Result();
    }
}

/// <summary>
/// Sends every new alert at or above <see cref="AlertOptions.MinimumSeverity"/> to each configured target, once it is
/// delivered, retrying with backoff until <see cref="AlertOptions.RetryFor"/> has passed. It runs beside everything
/// else and blocks nothing: alerts are read from the store, and what is owed is stored, so a restart resumes it.
/// </summary>
public sealed partial class AlertDeliveryService(
    IAlertDeliveryStore deliveries,
    IOptions<AlertOptions> options,
    IHttpClientFactory httpClients,
    IEmailSender emails,
    TimeProvider time,
    ILogger<AlertDeliveryService> logger) : BackgroundService
{
    public const string HttpClientName = "alerts";

    /// <summary>How long a claimed delivery is left to its sender before another may try it.</summary>
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(2);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly IReadOnlyList<AlertTarget> _targets = options.Value.Targets();

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_targets.Count > 0)
        {
            // Before the host reports it has started, so an alert raised by anything after that is sent.
            await deliveries.RegisterTargetsAsync(_targets, cancellationToken);
        }
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_targets.Count == 0)
        {
            return;
        }
        // Real time between looks: a test's fake clock decides what is due, not how often the service looks.
        using var timer = new PeriodicTimer(options.Value.PollPeriod, TimeProvider.System);
        do
        {
            try
            {
                await DeliverDueAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogPassFailed(e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task DeliverDueAsync(CancellationToken ct)
    {
        var settings = options.Value;
        await deliveries.QueueNewAlertsAsync(_targets, time.GetUtcNow(), settings.RetryFor, ct);
        while (true)
        {
            var now = time.GetUtcNow();
            var due = await deliveries.ClaimDueAsync(now, now + Lease, 20, ct);
            if (due.Count == 0)
            {
                return;
            }
            await Task.WhenAll(due.Select(d => DeliverAsync(d, ct)));
        }
    }

    private async Task DeliverAsync(DueAlertDelivery delivery, CancellationToken ct)
    {
        string? error;
        var permanent = false;
        try
        {
            (error, permanent) = await SendAsync(delivery, ct);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            error = e is TaskCanceledException ? "timed out" : e.Message;
        }

        if (error is null)
        {
            await deliveries.RecordDeliveredAsync(delivery.Alert.Id, delivery.Target, time.GetUtcNow(), CancellationToken.None);
            return;
        }
        var next = permanent ? (DateTimeOffset?)null : NextAttempt(delivery);
        await deliveries.RecordFailedAsync(delivery.Alert.Id, delivery.Target, error, next, CancellationToken.None);
        LogDeliveryFailed(delivery.Alert.Id, delivery.Target, delivery.Attempt, error, next is null);
    }

    private DateTimeOffset? NextAttempt(DueAlertDelivery delivery)
    {
        var settings = options.Value;
        var factor = Math.Pow(2, Math.Min(delivery.Attempt - 1, 30));
        var delay = TimeSpan.FromTicks((long)Math.Min(settings.FirstRetryDelay.Ticks * factor, settings.MaxRetryDelay.Ticks));
        var next = time.GetUtcNow() + delay;
        return next > delivery.GiveUpAt ? null : next;
    }

    /// <summary>Sends one delivery: null when it arrived, else why not and whether trying again could help.</summary>
    private async Task<(string? Error, bool Permanent)> SendAsync(DueAlertDelivery delivery, CancellationToken ct)
    {
        var settings = options.Value;
        var message = AlertMessage.From(delivery.Alert, delivery.RecipientId);
        if (delivery.Target.StartsWith("email:", StringComparison.Ordinal))
        {
            if (settings.Email.To is not { } to || $"email:{to.Trim()}" != delivery.Target)
            {
                return ("this e-mail address is no longer configured", true);
            }
            try
            {
                await emails.SendAsync(new EmailMessage(to.Trim(), $"[{message.Severity}] {message.Kind}", message.Text + "\n\n" + message.Message,
                    $"<p>{System.Net.WebUtility.HtmlEncode(message.Text)}</p>", "alert",
                    Metadata: new Dictionary<string, string> { ["alert_id"] = message.Id.ToString(CultureInfo.InvariantCulture) }), ct);
                return (null, false);
            }
            catch (EmailSendException e)
            {
                return (e.Message, !e.Transient);
            }
        }

        var webhook = settings.Webhooks.FirstOrDefault(w => AlertOptions.WebhookTargetId(w.Url) == delivery.Target);
        if (webhook is null)
        {
            return ("this webhook is no longer configured", true);
        }
        var body = JsonSerializer.Serialize(message, Json);
        using var request = new HttpRequestMessage(HttpMethod.Post, webhook.Url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("Escrow-Alert-Id", message.Id.ToString(CultureInfo.InvariantCulture));
        if (!string.IsNullOrEmpty(webhook.Secret))
        {
            request.Headers.Add(SignatureHeader, Sign(webhook.Secret, time.GetUtcNow().ToUnixTimeSeconds(), body));
        }
        request.Headers.UserAgent.Add(new ProductInfoHeaderValue("Escrow-Alerts", "1"));
        using var response = await httpClients.CreateClient(HttpClientName).SendAsync(request, ct);
        return response.IsSuccessStatusCode ? (null, false) : ($"HTTP {(int)response.StatusCode}", false);
    }

    public const string SignatureHeader = "Escrow-Signature";

    /// <summary><c>t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256 of "t.body"&gt;</c>, as Stripe signs its webhooks.</summary>
    public static string Sign(string secret, long unixSeconds, string body)
    {
        var t = unixSeconds.ToString(CultureInfo.InvariantCulture);
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{t}.{body}"));
        return $"t={t},v1={Convert.ToHexStringLower(mac)}";
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Alert {AlertId} to {Target}: attempt {Attempt} failed ({Error}); given up: {GivenUp}")]
    private partial void LogDeliveryFailed(long alertId, string target, int attempt, string error, bool givenUp);

    [LoggerMessage(Level = LogLevel.Error, Message = "Alert delivery: a pass failed; the next one tries again")]
    private partial void LogPassFailed(Exception e);
}

/// <summary>What a webhook receives. <c>text</c> is one line, so a Slack or Mattermost incoming webhook shows it as is.</summary>
public sealed record AlertMessage(long Id, string Kind, string Severity, Guid? EscrowId, string? RecipientId, string Message, DateTimeOffset CreatedAt, string Text)
{
    public static AlertMessage From(Escrow.Grains.Storage.AlertRecord alert, string? recipientId)
    {
        var oneLine = alert.Details.ReplaceLineEndings(" ");
        var about = alert.EscrowId is { } id ? $" (escrow {id})" : "";
        return new AlertMessage(alert.Id, alert.Kind, alert.Severity, alert.EscrowId, recipientId, alert.Details, alert.CreatedAt,
            $"[{alert.Severity}] {alert.Kind}: {oneLine}{about}");
    }
}
