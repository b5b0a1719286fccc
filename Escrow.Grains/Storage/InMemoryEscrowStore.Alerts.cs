using static Escrow.Grains.Storage.EscrowStoreRules;

namespace Escrow.Grains.Storage;

// Alerts: raised once per dedupe key, listed, acknowledged.
public sealed partial class InMemoryEscrowStore
{
    public Task<(AlertRecord Alert, bool Created)> RaiseAlertAsync(NewAlert alert, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(alert);
        ArgumentException.ThrowIfNullOrEmpty(alert.DedupeKey, nameof(alert.DedupeKey));
        lock (_lock)
        {
            if (_alertIdsByDedupeKey.TryGetValue(alert.DedupeKey, out var existingId))
            {
                return Task.FromResult((_alerts[existingId], false));
            }
            var record = new AlertRecord(_nextAlertId++, alert.Kind, alert.Severity, alert.EscrowId, alert.DedupeKey, alert.Details,
                Micros(alert.CreatedAt), null, null);
            _alerts[record.Id] = record;
            _alertIdsByDedupeKey[record.DedupeKey] = record.Id;
            return Task.FromResult((record, true));
        }
    }

    public Task<IReadOnlyList<AlertRecord>> ListAlertsAsync(bool openOnly, int limit, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyList<AlertRecord> rows = [.. _alerts.Values
                .Where(a => !openOnly || a.AcknowledgedAt is null)
                .OrderByDescending(a => a.Id)
                .Take(ListLimit(limit))];
            return Task.FromResult(rows);
        }
    }

    /// <summary>The alerts with ids above <paramref name="afterId"/>, oldest first (for the alert deliveries kept in memory).</summary>
    internal IReadOnlyList<AlertRecord> AlertsAfter(long afterId)
    {
        lock (_lock)
        {
            return [.. _alerts.Values.Where(a => a.Id > afterId).OrderBy(a => a.Id)];
        }
    }

    public Task<bool> AcknowledgeAlertAsync(long alertId, string acknowledgedBy, DateTimeOffset at, AuditEntry audit, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(acknowledgedBy);
        ArgumentNullException.ThrowIfNull(audit);
        lock (_lock)
        {
            if (!Acknowledge(alertId, acknowledgedBy, at))
            {
                return Task.FromResult(false);
            }
            AddAudit(audit);
            return Task.FromResult(true);
        }
    }

    public Task<bool> AcknowledgeAlertAsync(long alertId, string acknowledgedBy, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(acknowledgedBy);
        lock (_lock)
        {
            return Task.FromResult(Acknowledge(alertId, acknowledgedBy, at));
        }
    }

    private bool Acknowledge(long alertId, string acknowledgedBy, DateTimeOffset at)
    {
        if (!_alerts.TryGetValue(alertId, out var alert))
        {
            return false;
        }
        if (alert.AcknowledgedAt is null)
        {
            _alerts[alertId] = alert with { AcknowledgedAt = Micros(at), AcknowledgedBy = acknowledgedBy };
        }
        return true;
    }
}
