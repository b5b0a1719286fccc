namespace Escrow.Grains.Alerts;

/// <summary>
/// The alerts owed to each notification target (an operators' webhook or e-mail address) and how sending them went.
/// A target is sent each alert raised after it was first registered, once it is delivered; failures are retried
/// until the alert's give-up time and stay visible.
/// </summary>
public interface IAlertDeliveryStore
{
    /// <summary>Registers targets not seen before at the newest existing alert; known targets keep their place.</summary>
    Task RegisterTargetsAsync(IReadOnlyList<AlertTarget> targets, CancellationToken cancellationToken = default);

    /// <summary>Queues, for each target, the alerts raised since its last look that are at least as severe as it asks.</summary>
    Task QueueNewAlertsAsync(IReadOnlyList<AlertTarget> targets, DateTimeOffset now, TimeSpan retryFor, CancellationToken cancellationToken = default);

    /// <summary>Takes due deliveries for one send each: they are not due again until <paramref name="leaseUntil"/>.</summary>
    Task<IReadOnlyList<DueAlertDelivery>> ClaimDueAsync(DateTimeOffset now, DateTimeOffset leaseUntil, int limit, CancellationToken cancellationToken = default);

    Task RecordDeliveredAsync(long alertId, string target, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>A failed send: due again at <paramref name="nextAttemptAt"/>, or given up for good when it is null.</summary>
    Task RecordFailedAsync(long alertId, string target, string error, DateTimeOffset? nextAttemptAt, CancellationToken cancellationToken = default);

    /// <summary>Newest alerts first; <paramref name="state"/> (pending, delivered, failed) filters when set.</summary>
    Task<IReadOnlyList<AlertDeliveryRecord>> ListAsync(string? state, int limit, CancellationToken cancellationToken = default);
}

/// <param name="Id">Stable name of the target: <c>webhook:</c> and a hash of its URL, or <c>email:</c> and the address.</param>
/// <param name="Destination">What an operator may see of it: the webhook's scheme and host (its path may hold a token), or the address.</param>
/// <param name="MinimumSeverity">Alerts below this severity are not sent to it.</param>
public sealed record AlertTarget(string Id, string Destination, string MinimumSeverity);

public sealed record DueAlertDelivery(AlertRecord Alert, string? RecipientId, string Target, int Attempt, DateTimeOffset GiveUpAt);

public sealed record AlertDeliveryRecord(
    long AlertId,
    string Kind,
    string Severity,
    string Target,
    string Destination,
    string State,
    int Attempts,
    DateTimeOffset? NextAttemptAt,
    string? LastError,
    DateTimeOffset? DeliveredAt);

public static class AlertSeverity
{
    public const string Info = "info";
    public const string Warning = "warning";
    public const string Critical = "critical";

    /// <summary>info 1, warning 2, critical 3; anything else 0.</summary>
    public static int Rank(string severity) => severity switch
    {
        Info => 1,
        Warning => 2,
        Critical => 3,
        _ => 0,
    };

    public static bool IsKnown(string severity) => Rank(severity) > 0;
}
