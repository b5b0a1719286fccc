namespace Escrow.Grains.Alerts;

/// <summary>The deliveries of a service that keeps everything in memory: the same rules as in PostgreSQL, lost on exit.</summary>
public sealed class InMemoryAlertDeliveryStore(IEscrowStore store) : IAlertDeliveryStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, long> _targets = new(StringComparer.Ordinal);
    private readonly Dictionary<(long AlertId, string Target), Row> _rows = [];

    private sealed record Row(AlertRecord Alert, string Target, string Destination, string State, int Attempts, DateTimeOffset NextAttemptAt,
        DateTimeOffset GiveUpAt, string? LastError, DateTimeOffset? DeliveredAt);

    private InMemoryEscrowStore Alerts => store as InMemoryEscrowStore
        ?? throw new InvalidOperationException("In-memory alert deliveries need the in-memory escrow store.");

    public Task RegisterTargetsAsync(IReadOnlyList<AlertTarget> targets, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(targets);
        var last = Alerts.LastAlertId;
        lock (_lock)
        {
            foreach (var target in targets)
            {
                _targets.TryAdd(target.Id, last);
            }
        }
        return Task.CompletedTask;
    }

    public Task QueueNewAlertsAsync(IReadOnlyList<AlertTarget> targets, DateTimeOffset now, TimeSpan retryFor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(targets);
        lock (_lock)
        {
            foreach (var target in targets)
            {
                if (!_targets.TryGetValue(target.Id, out var after))
                {
                    continue;
                }
                foreach (var alert in Alerts.AlertsAfter(after))
                {
                    if (alert.CreatedAt > now - retryFor && AlertSeverity.Rank(alert.Severity) >= AlertSeverity.Rank(target.MinimumSeverity))
                    {
                        _rows.TryAdd((alert.Id, target.Id), new Row(alert, target.Id, target.Destination, "pending", 0, now, alert.CreatedAt + retryFor, null, null));
                    }
                }
            }
        }
        return Task.CompletedTask;
    }

    public async Task<IReadOnlyList<DueAlertDelivery>> ClaimDueAsync(DateTimeOffset now, DateTimeOffset leaseUntil, int limit, CancellationToken cancellationToken = default)
    {
        List<Row> claimed;
        lock (_lock)
        {
            claimed = [.. _rows.Values.Where(r => r.State == "pending" && r.NextAttemptAt <= now)
                .OrderBy(r => r.NextAttemptAt).ThenBy(r => r.Alert.Id).Take(Math.Clamp(limit, 1, 1000))
                .Select(r => r with { Attempts = r.Attempts + 1, NextAttemptAt = leaseUntil })];
            foreach (var row in claimed)
            {
                _rows[(row.Alert.Id, row.Target)] = row;
            }
        }
        var due = new List<DueAlertDelivery>(claimed.Count);
        foreach (var row in claimed)
        {
            var escrow = row.Alert.EscrowId is { } id ? await store.GetEscrowAsync(id, cancellationToken) : null;
            due.Add(new DueAlertDelivery(row.Alert, escrow?.RecipientId, row.Target, row.Attempts, row.GiveUpAt));
        }
        return due;
    }

    public Task RecordDeliveredAsync(long alertId, string target, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        Update(alertId, target, r => r with { State = "delivered", DeliveredAt = EscrowStoreRules.Micros(at), LastError = null });
        return Task.CompletedTask;
    }

    public Task RecordFailedAsync(long alertId, string target, string error, DateTimeOffset? nextAttemptAt, CancellationToken cancellationToken = default)
    {
        Update(alertId, target, r => r.State != "pending" ? r : nextAttemptAt is { } next
            ? r with { NextAttemptAt = next, LastError = error }
            : r with { State = "failed", LastError = error });
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<AlertDeliveryRecord>> ListAsync(string? state, int limit, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyList<AlertDeliveryRecord> rows = [.. _rows.Values
                .Where(r => state is null || r.State == state)
                .OrderByDescending(r => r.Alert.Id).ThenBy(r => r.Target, StringComparer.Ordinal)
                .Take(EscrowStoreRules.ListLimit(limit))
                .Select(r => new AlertDeliveryRecord(r.Alert.Id, r.Alert.Kind, r.Alert.Severity, r.Target, r.Destination, r.State, r.Attempts,
                    r.State == "pending" ? r.NextAttemptAt : null, r.LastError, r.DeliveredAt))];
            return Task.FromResult(rows);
        }
    }

    private void Update(long alertId, string target, Func<Row, Row> change)
    {
        lock (_lock)
        {
            if (_rows.TryGetValue((alertId, target), out var row))
            {
                _rows[(alertId, target)] = change(row);
            }
        }
    }
}
