using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Escrow.Sandbox;

/// <summary>
/// Delivers sandbox events to the webhook URL, signed like Stripe. Like Stripe, several at a time
/// (<see cref="SandboxOptions.WebhookDeliveryConcurrency"/>), so in no guaranteed order; a failed attempt is re-queued
/// after an exponential delay, so it never blocks later events.
/// </summary>
internal sealed partial class StripeWebhookDeliveryService(
    StripeSandbox sandbox,
    IHttpClientFactory httpClientFactory,
    IOptions<SandboxOptions> options,
    TimeProvider time,
    IServiceProvider services,
    ILogger<StripeWebhookDeliveryService> logger) : BackgroundService
{
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromHours(1);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, Math.Max(1, options.Value.WebhookDeliveryConcurrency)).Select(_ => DeliverAllAsync(stoppingToken)));

    private async Task DeliverAllAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var delivery in sandbox.Deliveries.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                if (await TryDeliverAsync(delivery, stoppingToken).ConfigureAwait(false))
                {
                    continue;
                }

                var settings = options.Value;
                if (delivery.Attempt >= settings.WebhookMaxAttempts)
                {
                    LogGaveUp(logger, delivery.EventId, delivery.Attempt);
                    continue;
                }

                _ = RetryLaterAsync(delivery, RetryDelay(settings.WebhookFirstRetryDelay, delivery.Attempt), stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // shutting down
        }
    }

    internal static TimeSpan RetryDelay(TimeSpan first, int failedAttempt)
    {
        var factor = Math.Pow(2, Math.Min(failedAttempt - 1, 30));
        var delay = TimeSpan.FromTicks((long)Math.Min(first.Ticks * factor, MaxRetryDelay.Ticks));
        return delay < TimeSpan.Zero ? TimeSpan.Zero : delay;
    }

    private async Task RetryLaterAsync(WebhookDelivery delivery, TimeSpan delay, CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
            sandbox.EnqueueDelivery(delivery with { Attempt = delivery.Attempt + 1 });
        }
        catch (OperationCanceledException)
        {
            // shutting down
        }
    }

    private async Task<bool> TryDeliverAsync(WebhookDelivery delivery, CancellationToken stoppingToken)
    {
        var stripeEvent = sandbox.GetEvent(delivery.EventId);
        if (stripeEvent is null)
        {
            return true; // forgotten by Reset()
        }

        var url = WebhookUrl();
        int? status = null;
        string? error = null;
        try
        {
            if (url is null)
            {
                error = "No webhook URL: set SandboxOptions.WebhookUrl or start the server first.";
            }
            else
            {
                var timestamp = time.GetUtcNow().ToUnixTimeSeconds();
                using var request = new HttpRequestMessage(HttpMethod.Post, url)
                {
                    Content = new StringContent(stripeEvent.Json, Encoding.UTF8, "application/json"),
                };
                // Events of connected accounts go to the Connect endpoint, whose secret alone signs them.
                var secrets = stripeEvent.Account is null ? options.Value.WebhookSecret : options.Value.ConnectWebhookSecret;
                request.Headers.TryAddWithoutValidation("Stripe-Signature", SignatureHeader(secrets, timestamp, stripeEvent.Json));
                request.Headers.TryAddWithoutValidation("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)");
                var client = httpClientFactory.CreateClient(SandboxOptions.WebhookHttpClientName);
                using var response = await client.SendAsync(request, stoppingToken).ConfigureAwait(false);
                status = (int)response.StatusCode;
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            throw;
        }
#pragma warning disable CA1031 // any failure of the receiver is a failed attempt, to be retried
        catch (Exception ex)
#pragma warning restore CA1031
        {
            error = ex.GetType().Name + ": " + ex.Message;
        }

        var attempt = new SandboxWebhookAttempt(delivery.EventId, delivery.Attempt, status, error, time.GetUtcNow());
        sandbox.RecordAttempt(attempt);
        if (!attempt.Succeeded)
        {
            LogFailed(logger, delivery.EventId, stripeEvent.Type, delivery.Attempt, status, error);
        }

        return attempt.Succeeded;
    }

    /// <summary>
    /// The <c>Stripe-Signature</c> header value: <c>t=...,v1=hex(HMAC-SHA256(secret, "t.payload"))</c>, one <c>v1</c> per
    /// secret of a comma-separated list (Stripe signs with the old and the new secret while one is rolled).
    /// </summary>
    internal static string SignatureHeader(string secrets, long timestamp, string payload)
    {
        var t = timestamp.ToString(CultureInfo.InvariantCulture);
        var signed = Encoding.UTF8.GetBytes($"{t}.{payload}");
        var v1 = secrets.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(secret => "v1=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed)));
        return $"t={t},{string.Join(',', v1)}";
    }

    private Uri? WebhookUrl()
    {
        if (options.Value.WebhookUrl is { } configured)
        {
            return configured;
        }

        var address = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        if (address is null)
        {
            return null;
        }

        var builder = new UriBuilder(address.Replace("://+", "://localhost", StringComparison.Ordinal)
            .Replace("://*", "://localhost", StringComparison.Ordinal)
            .Replace("://[::]", "://localhost", StringComparison.Ordinal)
            .Replace("://0.0.0.0", "://localhost", StringComparison.Ordinal));
        builder.Path = builder.Path.TrimEnd('/') + "/webhooks/stripe";
        return builder.Uri;
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Sandbox webhook {EventId} ({EventType}) attempt {Attempt} failed: status {Status}, error {Error}")]
    private static partial void LogFailed(ILogger logger, string eventId, string eventType, int attempt, int? status, string? error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Sandbox webhook {EventId} given up after {Attempts} attempts")]
    private static partial void LogGaveUp(ILogger logger, string eventId, int attempts);
}
