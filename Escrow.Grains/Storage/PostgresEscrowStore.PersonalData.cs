using Npgsql;

namespace Escrow.Grains.Storage;

public sealed partial class PostgresEscrowStore : IPersonalDataStore
{
    private const string TerminalStatuses = "('released', 'refunded', 'payment_failed', 'cancelled')";

    public Task<IReadOnlyList<EscrowProjection>> FindEscrowsBySenderAsync(string senderKey, int limit, CancellationToken cancellationToken = default) =>
        FindProjectionsAsync("sender_key = $1 ORDER BY created_at", limit, cancellationToken, P(senderKey));

    public Task<IReadOnlyList<EscrowProjection>> FindEscrowsOfRecipientAsync(string recipientId, int limit, CancellationToken cancellationToken = default) =>
        FindProjectionsAsync("recipient_id = $1 ORDER BY created_at", limit, cancellationToken, P(recipientId));

    public Task<IReadOnlyList<EscrowProjection>> FindEscrowsToRetireAsync(DateTimeOffset before, int limit, CancellationToken cancellationToken = default) =>
        FindProjectionsAsync($"NOT bodies_erased AND status IN {TerminalStatuses} AND status_changed_at < $1 ORDER BY status_changed_at", limit, cancellationToken, P(before.ToUniversalTime()));

    private async Task<IReadOnlyList<EscrowProjection>> FindProjectionsAsync(string where, int limit, CancellationToken cancellationToken, NpgsqlParameter parameter)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {ProjectionColumns} FROM escrow_projection WHERE {where} LIMIT {Math.Clamp(limit, 1, 100_000)}");
        command.Parameters.Add(parameter);
        return await ReadAllAsync(command, ReadProjection, cancellationToken);
    }

    /// <summary>One transaction: the escrows' rows lose their subjects and previews, then the address goes everywhere.</summary>
    public async Task<ErasedRows> ErasePersonalDataAsync(PersonalDataErasure erasure, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(erasure);
        var ids = erasure.EscrowIds.ToArray();
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        async Task<int> RunAsync(string sql, params NpgsqlParameter[] parameters)
        {
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            command.Parameters.AddRange(parameters);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }
        var emails = await RunAsync("UPDATE email_log SET subject = 'erased' WHERE escrow_id = ANY($1) AND subject <> 'erased'", P(ids));
        var inbound = await RunAsync("UPDATE inbound_messages SET subject = 'erased', preview = 'erased' WHERE escrow_id = ANY($1) AND (subject <> 'erased' OR preview <> 'erased')", P(ids));
        foreach (var (escrowId, sender) in erasure.Senders ?? new Dictionary<Guid, string>())
        {
            emails += await RunAsync("UPDATE email_log SET to_address = 'erased' WHERE escrow_id = $1 AND lower(to_address) = lower($2)", P(escrowId), Text(sender));
        }
        int alerts = 0, audit = 0;
        if (!string.IsNullOrEmpty(erasure.Email))
        {
            // Occurrences in free text (a Postmark error, an alert, an operator's reason) are replaced in any case.
            const string Replace = "regexp_replace({0}, $2, 'erased', 'gi')";
            // A parameter belongs to one command: each statement gets its own.
            NpgsqlParameter email() => Text(erasure.Email);
            NpgsqlParameter pattern() => Text(PosixPattern(erasure.Email));
            emails += await RunAsync($"""
                UPDATE email_log SET
                    to_address = CASE WHEN lower(to_address) = lower($1) THEN 'erased' ELSE to_address END,
                    subject = CASE WHEN lower(to_address) = lower($1) THEN 'erased' ELSE subject END,
                    error = {string.Format(System.Globalization.CultureInfo.InvariantCulture, Replace, "error")}
                WHERE lower(to_address) = lower($1) OR strpos(lower(error), lower($1)) > 0
                """, email(), pattern());
            inbound += await RunAsync("""
                UPDATE inbound_messages SET from_address = 'erased', subject = 'erased', preview = 'erased'
                WHERE lower(from_address) = lower($1) OR strpos(lower(preview), lower($1)) > 0 OR strpos(lower(subject), lower($1)) > 0
                """, email());
            alerts = await RunAsync($"UPDATE alerts SET details = {string.Format(System.Globalization.CultureInfo.InvariantCulture, Replace, "details")} WHERE strpos(lower(details), lower($1)) > 0", email(), pattern());
            await RunAsync($"UPDATE alert_deliveries SET last_error = {string.Format(System.Globalization.CultureInfo.InvariantCulture, Replace, "last_error")} WHERE strpos(lower(last_error), lower($1)) > 0", email(), pattern());
            audit = await RunAsync($"""
                UPDATE audit_log SET reason = {string.Format(System.Globalization.CultureInfo.InvariantCulture, Replace, "reason")}, details = {string.Format(System.Globalization.CultureInfo.InvariantCulture, Replace, "details")}
                WHERE strpos(lower(coalesce(reason, '') || ' ' || coalesce(details, '')), lower($1)) > 0
                """, email(), pattern());
        }
        await transaction.CommitAsync(cancellationToken);
        return new ErasedRows(emails, inbound, alerts, audit);
    }

    /// <summary>A POSIX regular expression that matches the address literally.</summary>
    private static string PosixPattern(string text) =>
        string.Concat(text.Select(c => char.IsAsciiLetterOrDigit(c) ? c.ToString() : "\\" + c));
}
