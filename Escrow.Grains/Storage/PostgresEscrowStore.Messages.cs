using Npgsql;

namespace Escrow.Grains.Storage;

// What came in and went out: the webhook inbox, the e-mail log, inbound replies.
public sealed partial class PostgresEscrowStore
{
    private const string EmailColumns = "escrow_id, kind, to_address, subject, outcome, provider_message_id, error, at";

    private const string InsertEmailSql = $"INSERT INTO email_log ({EmailColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

    private const string InboundColumns =
        "provider_message_id, escrow_id, from_address, subject, received_at, within_deadline, grace_used, ignored_reason, preview";

    public async Task<WebhookReceipt> RecordWebhookAsync(string provider, string eventId, string eventType, DateTimeOffset receivedAt,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(provider);
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        ArgumentException.ThrowIfNullOrEmpty(eventType);
        await using var command = _dataSource.CreateCommand("""
            INSERT INTO webhook_inbox AS w (provider, event_id, event_type, received_at, attempts)
            VALUES ($1, $2, $3, $4, 1)
            ON CONFLICT (provider, event_id) DO UPDATE SET attempts = w.attempts + 1
            RETURNING w.processed_at IS NOT NULL, w.attempts
            """);
        AddParameters(command.Parameters, P(provider), P(eventId), P(eventType), P(receivedAt.ToUniversalTime()));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return new WebhookReceipt(reader.GetBoolean(0), reader.GetInt32(1));
    }

    public async Task<bool> IsWebhookProcessedAsync(string provider, string eventId, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand(
            "SELECT EXISTS (SELECT 1 FROM webhook_inbox WHERE provider = $1 AND event_id = $2 AND processed_at IS NOT NULL)");
        AddParameters(command.Parameters, P(provider), P(eventId));
        return await command.ExecuteScalarAsync(cancellationToken) is true;
    }

    public async Task RecordProcessedWebhookAsync(string provider, string eventId, string eventType, DateTimeOffset receivedAt, string outcome, DateTimeOffset processedAt,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(provider);
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        ArgumentException.ThrowIfNullOrEmpty(eventType);
        ArgumentException.ThrowIfNullOrEmpty(outcome);
        await using var command = _dataSource.CreateCommand("""
            INSERT INTO webhook_inbox AS w (provider, event_id, event_type, received_at, attempts, processed_at, outcome)
            VALUES ($1, $2, $3, $4, 1, $5, $6)
            ON CONFLICT (provider, event_id) DO UPDATE SET processed_at = excluded.processed_at, outcome = excluded.outcome
            WHERE w.processed_at IS NULL
            """);
        AddParameters(command.Parameters, P(provider), P(eventId), P(eventType), P(receivedAt.ToUniversalTime()),
            P(processedAt.ToUniversalTime()), P(outcome));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task MarkWebhookProcessedAsync(string provider, string eventId, string outcome, DateTimeOffset processedAt,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(outcome);
        await using var command = _dataSource.CreateCommand("""
            UPDATE webhook_inbox SET processed_at = $1, outcome = $2
            WHERE provider = $3 AND event_id = $4 AND processed_at IS NULL
            """);
        AddParameters(command.Parameters, P(processedAt.ToUniversalTime()), P(outcome), P(provider), P(eventId));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public Task LogEmailAsync(EmailLogEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return _writes.WriteAsync(entry, cancellationToken);
    }

    private static void AddEmailLogCommand(NpgsqlBatch batch, EmailLogEntry entry)
    {
        var command = new NpgsqlBatchCommand(InsertEmailSql);
        AddParameters(command.Parameters, P(entry.EscrowId), P(entry.Kind), P(entry.To), P(entry.Subject),
            P(entry.Outcome), Text(entry.ProviderMessageId), Text(entry.Error), P(entry.At.ToUniversalTime()));
        batch.BatchCommands.Add(command);
    }

    public async Task<IReadOnlyList<EmailLogEntry>> GetEmailLogAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {EmailColumns} FROM email_log WHERE escrow_id = $1 ORDER BY at, id");
        command.Parameters.Add(P(escrowId));
        return await ReadAllAsync(command, r => new EmailLogEntry(
            NullableGuid(r, 0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4),
            NullableString(r, 5), NullableString(r, 6), Time(r, 7)), cancellationToken);
    }

    public async Task<EmailLogEntry?> FindSentEmailAsync(string? providerMessageId, string? toAddress, CancellationToken cancellationToken = default)
    {
        foreach (var (where, value) in new[] { ("provider_message_id = $1", providerMessageId), ("lower(to_address) = lower($1)", toAddress) })
        {
            if (string.IsNullOrEmpty(value))
            {
                continue;
            }
            await using var command = _dataSource.CreateCommand(
                $"SELECT {EmailColumns} FROM email_log WHERE {where} AND outcome = 'sent' ORDER BY at DESC, id DESC LIMIT 1");
            command.Parameters.Add(Text(value));
            var found = await ReadAllAsync(command, r => new EmailLogEntry(
                NullableGuid(r, 0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4),
                NullableString(r, 5), NullableString(r, 6), Time(r, 7)), cancellationToken);
            if (found.Count > 0)
            {
                return found[0];
            }
        }
        return null;
    }

    public async Task RecordInboundMessageAsync(InboundMessageRecord message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(message.ProviderMessageId, nameof(message.ProviderMessageId));
        await using var command = _dataSource.CreateCommand($"""
            INSERT INTO inbound_messages ({InboundColumns})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (provider_message_id) DO UPDATE SET
                escrow_id = excluded.escrow_id, from_address = excluded.from_address, subject = excluded.subject,
                within_deadline = excluded.within_deadline, grace_used = excluded.grace_used,
                ignored_reason = excluded.ignored_reason, preview = excluded.preview
            WHERE inbound_messages.ignored_reason = '{InboundMessageRecord.Pending}'
            """);
        AddParameters(command.Parameters, P(message.ProviderMessageId), P(message.EscrowId), P(message.From),
            P(message.Subject), P(message.ReceivedAt.ToUniversalTime()), P(message.WithinDeadline),
            P(message.GraceUsed), Text(message.IgnoredReason), P(message.Preview));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<DateTimeOffset> RecordInboundReceiptAsync(InboundMessageRecord message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(message.ProviderMessageId, nameof(message.ProviderMessageId));
        // The no-op update makes the row come back when it exists: its received_at is the first delivery's.
        await using var command = _dataSource.CreateCommand($"""
            INSERT INTO inbound_messages ({InboundColumns})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (provider_message_id) DO UPDATE SET provider_message_id = inbound_messages.provider_message_id
            RETURNING received_at
            """);
        AddParameters(command.Parameters, P(message.ProviderMessageId), P(message.EscrowId), P(message.From),
            P(message.Subject), P(message.ReceivedAt.ToUniversalTime()), P(message.WithinDeadline),
            P(message.GraceUsed), Text(InboundMessageRecord.Pending), P(message.Preview));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return Time(reader, 0);
    }

    public async Task<IReadOnlyList<InboundMessageRecord>> GetInboundMessagesAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"""
            SELECT {InboundColumns} FROM inbound_messages WHERE escrow_id = $1
            ORDER BY received_at, provider_message_id COLLATE "C"
            """);
        command.Parameters.Add(P(escrowId));
        return await ReadAllAsync(command, r => new InboundMessageRecord(
            r.GetString(0), NullableGuid(r, 1), r.GetString(2), r.GetString(3), Time(r, 4),
            r.GetBoolean(5), r.GetBoolean(6), NullableString(r, 7), r.GetString(8)), cancellationToken);
    }
}
