using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Escrow.Grains;

/// <summary>The service's own meter and activity source ("Escrow"), exported with Orleans' and ASP.NET Core's.</summary>
public static class EscrowTelemetry
{
    public const string Name = "Escrow";

    public static readonly ActivitySource Source = new(Name);

    public static readonly Meter Meter = new(Name);

    public static readonly Counter<long> EscrowsCreated = Meter.CreateCounter<long>("escrow.created", description: "Escrows created");

    public static readonly Counter<long> StatusChanges = Meter.CreateCounter<long>("escrow.status_changes", description: "Status changes, by the status entered");

    public static readonly Counter<long> Released = Meter.CreateCounter<long>("escrow.released", description: "Escrows released to the recipient");

    public static readonly Counter<long> Refunded = Meter.CreateCounter<long>("escrow.refunded", description: "Escrows refunded to the sender");

    public static readonly Counter<long> RefundsDenied = Meter.CreateCounter<long>("escrow.refunds_denied", description: "Refund permits refused by the circuit breaker");

    public static readonly Counter<long> BreakerTrips = Meter.CreateCounter<long>("escrow.breaker_trips", description: "Circuit breaker trips");

    public static readonly Counter<long> TransferFailures = Meter.CreateCounter<long>("escrow.transfer_failures", description: "Failed transfer attempts (each is retried with backoff)");

    public static readonly Counter<long> EffectRetries = Meter.CreateCounter<long>("escrow.effect_retries", description: "Effects postponed after a transient failure, by kind");

    public static readonly Counter<long> WebhookEvents = Meter.CreateCounter<long>("escrow.webhook_events", description: "Webhook deliveries, by provider, type and outcome");

    public static readonly Counter<long> EmailsSent = Meter.CreateCounter<long>("escrow.emails", description: "Emails, by kind and outcome");

    /// <summary>
    /// Open escrows by status, read from the projection by the host's gauge service. The gauge lives on a meter of the
    /// host's own <see cref="IMeterFactory"/>, so it goes with the host; on the static meter every host started in a
    /// process (tests start hundreds) would leave its callback, and each metrics reader a stream for it, behind.
    /// </summary>
    public static void ObserveOpenEscrows(IMeterFactory meters, Func<IEnumerable<Measurement<long>>> observe) =>
        meters.Create(Name).CreateObservableGauge("escrow.open", observe, description: "Escrows not yet terminal, by status");
}
