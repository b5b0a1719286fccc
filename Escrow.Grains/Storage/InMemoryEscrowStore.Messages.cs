using static Escrow.Grains.Storage.EscrowStoreRules;

namespace Escrow.Grains.Storage;

// What came in and went out: the webhook inbox, the e-mail log, inbound replies.
public sealed partial class InMemoryEscrowStore
{
    public Task<WebhookReceipt> RecordWebhookAsync(string provider, string eventId, string eventType, DateTimeOffset receivedAt,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(provider);
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        ArgumentException.ThrowIfNullOrEmpty(eventType);
        lock (_lock)
        {
            var row = _webhooks.TryGetValue((provider, eventId), out var existing)
                ? existing with { Attempts = existing.Attempts + 1 }
                : new WebhookRow(eventType, Micros(receivedAt), 1, null, null);
            _webhooks[(provider, eventId)] = row;
            return Task.FromResult(new WebhookReceipt(row.ProcessedAt is not null, row.Attempts));
        }
    }

    public Task<bool> IsWebhookProcessedAsync(string provider, string eventId, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return Task.FromResult(_webhooks.TryGetValue((provider, eventId), out var row) && row.ProcessedAt is not null);
        }
    }

    public Task RecordProcessedWebhookAsync(string provider, string eventId, string eventType, DateTimeOffset receivedAt, string outcome, DateTimeOffset processedAt,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(provider);
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        ArgumentException.ThrowIfNullOrEmpty(eventType);
        ArgumentException.ThrowIfNullOrEmpty(outcome);
        lock (_lock)
        {
            if (!_webhooks.TryGetValue((provider, eventId), out var row))
            {
                _webhooks[(provider, eventId)] = new WebhookRow(eventType, Micros(receivedAt), 1, Micros(processedAt), outcome);
            }
            else if (row.ProcessedAt is null)
            {
                _webhooks[(provider, eventId)] = row with { ProcessedAt = Micros(processedAt), Outcome = outcome };
            }
        }
        return Task.CompletedTask;
    }

    public Task MarkWebhookProcessedAsync(string provider, string eventId, string outcome, DateTimeOffset processedAt,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(outcome);
        lock (_lock)
        {
            if (_webhooks.TryGetValue((provider, eventId), out var row) && row.ProcessedAt is null)
            {
                _webhooks[(provider, eventId)] = row with { ProcessedAt = Micros(processedAt), Outcome = outcome };
            }
        }
        return Task.CompletedTask;
    }

    public Task LogEmailAsync(EmailLogEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_lock)
        {
            _emails.Add((_nextEmailId++, entry with { At = Micros(entry.At) }));
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<EmailLogEntry>> GetEmailLogAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyList<EmailLogEntry> rows = [.. _emails
                .Where(e => e.Entry.EscrowId == escrowId)
                .OrderBy(e => e.Entry.At).ThenBy(e => e.Id)
                .Select(e => e.Entry)];
            return Task.FromResult(rows);
        }
    }

    public Task<EmailLogEntry?> FindSentEmailAsync(string? providerMessageId, string? toAddress, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            var sent = _emails.Where(e => e.Entry.Outcome == "sent").OrderByDescending(e => e.Entry.At).ThenByDescending(e => e.Id).Select(e => e.Entry).ToList();
            var found = (string.IsNullOrEmpty(providerMessageId) ? null : sent.FirstOrDefault(e => e.ProviderMessageId == providerMessageId))
                ?? (string.IsNullOrEmpty(toAddress) ? null : sent.FirstOrDefault(e => string.Equals(e.To, toAddress, StringComparison.OrdinalIgnoreCase)));
            return Task.FromResult(found);
        }
    }

    public Task RecordInboundMessageAsync(InboundMessageRecord message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(message.ProviderMessageId, nameof(message.ProviderMessageId));
        lock (_lock)
        {
            if (_inbound.TryGetValue(message.ProviderMessageId, out var stored))
            {
                if (stored.IgnoredReason == InboundMessageRecord.Pending)
                {
                    _inbound[message.ProviderMessageId] = message with { ReceivedAt = stored.ReceivedAt };
                }
                return Task.CompletedTask;
            }
            _inbound.Add(message.ProviderMessageId, message with { ReceivedAt = Micros(message.ReceivedAt) });
        }
        return Task.CompletedTask;
    }

    public Task<DateTimeOffset> RecordInboundReceiptAsync(InboundMessageRecord message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(message.ProviderMessageId, nameof(message.ProviderMessageId));
        lock (_lock)
        {
            if (!_inbound.TryGetValue(message.ProviderMessageId, out var stored))
            {
                stored = message with { ReceivedAt = Micros(message.ReceivedAt), IgnoredReason = InboundMessageRecord.Pending };
                _inbound.Add(message.ProviderMessageId, stored);
            }
            return Task.FromResult(stored.ReceivedAt);
        }
    }

    public Task<IReadOnlyList<InboundMessageRecord>> GetInboundMessagesAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyList<InboundMessageRecord> rows = [.. _inbound.Values
                .Where(m => m.EscrowId == escrowId)
                .OrderBy(m => m.ReceivedAt).ThenBy(m => m.ProviderMessageId, StringComparer.Ordinal)];
            return Task.FromResult(rows);
        }
    }
}
