namespace Escrow.Sandbox;

/// <summary>An email accepted by the Postmark emulator.</summary>
public sealed record SandboxEmail
{
    public required string To { get; init; }
    public required string From { get; init; }
    public string? Cc { get; init; }
    public string? Bcc { get; init; }
    public string? ReplyTo { get; init; }
    public string? Subject { get; init; }
    public string? TextBody { get; init; }
    public string? HtmlBody { get; init; }
    public string? Tag { get; init; }
    public string? MessageStream { get; init; }
    public IReadOnlyDictionary<string, string> Headers { get; init; } = SandboxDefaults.EmptyMetadata;
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = SandboxDefaults.EmptyMetadata;
    public required string MessageId { get; init; }
    public required DateTimeOffset SentAt { get; init; }
}

/// <summary>The in-memory outbox of the Postmark emulator. Thread-safe.</summary>
public sealed class PostmarkSandbox
{
    private readonly Lock _gate = new();
    private readonly PersistentMap<SandboxEmail> _outbox;
    private readonly SandboxJournal? _journal;
    private int _serverErrors;
    private readonly Queue<PostmarkFaultKind> _faults = new();

    internal PostmarkSandbox(SandboxJournal? journal = null)
    {
        _journal = journal;
        _outbox = new("postmark.email", journal);
        _outbox.Load();
    }

    /// <summary>Accepted emails, oldest first.</summary>
    public IReadOnlyList<SandboxEmail> Outbox
    {
        get { lock (_gate) { return [.. _outbox.Values]; } }
    }

    /// <summary>Completes when every change made so far is durable (at once without a journal).</summary>
    internal Task WhenDurableAsync() => _journal is null ? Task.CompletedTask : _journal.WhenDurableAsync(_journal.LastSeq);

    public void ClearOutbox()
    {
        lock (_gate)
        {
            _outbox.Clear();
        }
    }

    /// <summary>The next <paramref name="times"/> sends answer 500.</summary>
    public void InjectServerErrors(int times)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(times);
        lock (_gate)
        {
            _serverErrors += times;
        }
    }

    public void ClearFaults()
    {
        lock (_gate)
        {
            _serverErrors = 0;
            _faults.Clear();
        }
    }

    /// <summary>
    /// The next <paramref name="times"/> sends answer as Postmark does for <paramref name="kind"/>: a 500, a 429, or a
    /// 422 with ErrorCode 300 (invalid address) or 406 (inactive recipient).
    /// </summary>
    public void InjectFaults(PostmarkFaultKind kind, int times)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(times);
        lock (_gate)
        {
            for (var i = 0; i < times; i++)
            {
                _faults.Enqueue(kind);
            }
        }
    }

    /// <summary>Consumes one injected fault if any (returned); otherwise stores the email and returns null.</summary>
    internal PostmarkFaultKind? TryAccept(SandboxEmail email)
    {
        lock (_gate)
        {
            if (_serverErrors > 0)
            {
                _serverErrors--;
                return PostmarkFaultKind.ServerError;
            }

            if (_faults.TryDequeue(out var fault))
            {
                return fault;
            }

            _outbox[email.MessageId] = email;
            return null;
        }
    }
}

/// <summary>How the Postmark emulator can refuse a send, each answered as Postmark documents it.</summary>
public enum PostmarkFaultKind
{
    /// <summary>500: transient.</summary>
    ServerError,
    /// <summary>429: too many requests, transient.</summary>
    RateLimited,
    /// <summary>422 with ErrorCode 300 (invalid email request): permanent.</summary>
    InvalidAddress,
    /// <summary>422 with ErrorCode 406 (inactive recipient): permanent.</summary>
    InactiveRecipient,
}
