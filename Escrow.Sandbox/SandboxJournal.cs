using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Escrow.Sandbox;

/// <summary>
/// Keeps the emulators' objects in PostgreSQL (schema <c>escrow_sandbox</c>, beside the service's own tables), so a
/// restarted process finds the PaymentIntents, charges, transfers, accounts, events and e-mails it had, as it would
/// find them at Stripe and Postmark. Changes are recorded in memory under the emulator's lock, numbered in order,
/// and written by one writer in batches; an API answer waits until its changes are durable
/// (<see cref="WhenDurableAsync"/>), as Stripe's would.
/// </summary>
public sealed partial class SandboxJournal : IAsyncDisposable, IDisposable
{
    private const string Schema = "escrow_sandbox";

    /// <summary>Any fixed number; the emulators of one database take turns creating their tables. ASCII "sandbox".</summary>
    private const long AdvisoryLockKey = 0x73616E64626F78;

    private const int BatchMax = 500;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General);

    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger _logger;
    private readonly Channel<Change> _changes = Channel.CreateUnbounded<Change>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _gate = new();
    private readonly List<(long Seq, TaskCompletionSource Done)> _waiters = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _writer;
    private long _seq;
    private long _durable;

    public SandboxJournal(string connectionString, ILogger<SandboxJournal> logger)
    {
        _dataSource = NpgsqlDataSource.Create(connectionString);
        _logger = logger;
        _seq = CreateSchemaAndReadLastSeq();
        _durable = _seq;
        _writer = Task.Run(WriteAllAsync);
    }

    /// <summary>The number of the last change recorded.</summary>
    public long LastSeq => Interlocked.Read(ref _seq);

    /// <summary>Every stored object of the given kinds, in the order they were first written.</summary>
    internal IReadOnlyList<(string Kind, string Id, string Body)> Load(params string[] kinds)
    {
        using var command = _dataSource.CreateCommand(
            $"SELECT kind, id, body FROM {Schema}.objects WHERE kind = ANY(@kinds) ORDER BY ord");
        command.Parameters.AddWithValue("kinds", kinds);
        using var reader = command.ExecuteReader();
        var rows = new List<(string, string, string)>();
        while (reader.Read())
        {
            rows.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }

        return rows;
    }

    internal static T Deserialize<T>(string body) => JsonSerializer.Deserialize<T>(body, Json)!;

    /// <summary>Records a new or changed object. Called under the emulator's lock, so numbers follow the changes' order.</summary>
    internal void Put<T>(string kind, string id, T value) =>
        Record(new Change(kind, id, JsonSerializer.Serialize(value, Json), 0));

    internal void Delete(string kind, string id) => Record(new Change(kind, id, null, 0));

    /// <summary>Forgets every object of the given kinds (a reset).</summary>
    internal void Clear(params string[] kinds) => Record(new Change(string.Join(',', kinds), null, null, 0));

    private void Record(Change change)
    {
        var seq = Interlocked.Increment(ref _seq);
        if (!_changes.Writer.TryWrite(change with { Seq = seq }))
        {
            throw new ObjectDisposedException(nameof(SandboxJournal), "The emulators' journal is closed: its host has stopped.");
        }
    }

    /// <summary>Completes once every change numbered up to <paramref name="seq"/> is written.</summary>
    public Task WhenDurableAsync(long seq)
    {
        lock (_gate)
        {
            if (seq <= _durable)
            {
                return Task.CompletedTask;
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((seq, done));
            return done.Task;
        }
    }

    private long CreateSchemaAndReadLastSeq()
    {
        using var connection = _dataSource.OpenConnection();
        using var transaction = connection.BeginTransaction();
        using (var command = new NpgsqlCommand($"""
            SELECT pg_advisory_xact_lock({AdvisoryLockKey});
            CREATE SCHEMA IF NOT EXISTS {Schema};
            CREATE TABLE IF NOT EXISTS {Schema}.objects
            (
                kind text   NOT NULL,
                id   text   NOT NULL,
                ord  bigint NOT NULL,
                seq  bigint NOT NULL,
                body text   NOT NULL,
                CONSTRAINT objects_pk PRIMARY KEY (kind, id)
            );
            """, connection, transaction))
        {
            command.ExecuteNonQuery();
        }

        long last;
        using (var command = new NpgsqlCommand($"SELECT coalesce(max(seq), 0) FROM {Schema}.objects", connection, transaction))
        {
            last = (long)command.ExecuteScalar()!;
        }

        transaction.Commit();
        return last;
    }

    private async Task WriteAllAsync()
    {
        var batch = new List<Change>();
        var reader = _changes.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stopping.Token).ConfigureAwait(false))
            {
                while (batch.Count < BatchMax && reader.TryRead(out var change))
                {
                    batch.Add(change);
                }

                await WriteWithRetryAsync(batch).ConfigureAwait(false);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Disposed: what is still queued is written by DisposeAsync.
        }
    }

    private async Task WriteWithRetryAsync(List<Change> batch)
    {
        // The database is the emulator's memory: a write that fails is tried again until it succeeds, and the answers
        // waiting for it wait with it.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await WriteAsync(batch).ConfigureAwait(false);
                Durable(batch[^1].Seq);
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
            {
                LogWriteFailed(_logger, e, batch.Count, attempt);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5_000, 100 * attempt))).ConfigureAwait(false);
            }
        }
    }

    private async Task WriteAsync(List<Change> batch)
    {
        await using var connection = await _dataSource.OpenConnectionAsync().ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        await using var commands = new NpgsqlBatch(connection, transaction);
        foreach (var change in batch)
        {
            var command = new NpgsqlBatchCommand();
            if (change.Id is null)
            {
                command.CommandText = $"DELETE FROM {Schema}.objects WHERE kind = ANY(@kinds)";
                command.Parameters.AddWithValue("kinds", change.Kind.Split(','));
            }
            else if (change.Body is null)
            {
                command.CommandText = $"DELETE FROM {Schema}.objects WHERE kind = @kind AND id = @id";
                command.Parameters.AddWithValue("kind", change.Kind);
                command.Parameters.AddWithValue("id", change.Id);
            }
            else
            {
                // The first write fixes the object's place in its list (ord); later ones replace its body.
                command.CommandText = $"""
                    INSERT INTO {Schema}.objects (kind, id, ord, seq, body) VALUES (@kind, @id, @seq, @seq, @body)
                    ON CONFLICT (kind, id) DO UPDATE SET seq = excluded.seq, body = excluded.body
                    """;
                command.Parameters.AddWithValue("kind", change.Kind);
                command.Parameters.AddWithValue("id", change.Id);
                command.Parameters.AddWithValue("seq", change.Seq);
                command.Parameters.AddWithValue("body", change.Body);
            }

            commands.BatchCommands.Add(command);
        }

        await commands.ExecuteNonQueryAsync().ConfigureAwait(false);
        await transaction.CommitAsync().ConfigureAwait(false);
    }

    private void Durable(long seq)
    {
        List<TaskCompletionSource> done;
        lock (_gate)
        {
            _durable = Math.Max(_durable, seq);
            done = [.. _waiters.Where(w => w.Seq <= _durable).Select(w => w.Done)];
            _waiters.RemoveAll(w => w.Seq <= _durable);
        }

        foreach (var d in done)
        {
            d.TrySetResult();
        }
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>Writes what is still queued, then stops.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested || !_changes.Writer.TryComplete())
        {
            return;
        }

        await _writer.ConfigureAwait(false);
        var rest = new List<Change>();
        while (_changes.Reader.TryRead(out var change))
        {
            rest.Add(change);
        }

        if (rest.Count > 0)
        {
            await WriteWithRetryAsync(rest).ConfigureAwait(false);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _stopping.Dispose();
        await _dataSource.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>A put (Body set), a delete (Body null), or a clear of the kinds listed in Kind (Id null).</summary>
    private sealed record Change(string Kind, string? Id, string? Body, long Seq);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sandbox journal: writing {Count} changes failed (attempt {Attempt}); retrying")]
    private static partial void LogWriteFailed(ILogger logger, Exception e, int count, int attempt);
}
