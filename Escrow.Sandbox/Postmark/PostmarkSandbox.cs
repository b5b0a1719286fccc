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
    private readonly List<SandboxEmail> _outbox = [];
    private int _serverErrors;

    internal PostmarkSandbox()
    {
    }

    /// <summary>Accepted emails, oldest first.</summary>
    public IReadOnlyList<SandboxEmail> Outbox
    {
        get { lock (_gate) { return [.. _outbox]; } }
    }

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
        }
    }

    /// <summary>Consumes one injected fault if any; otherwise stores the email. False when a fault was consumed.</summary>
    internal bool TryAccept(SandboxEmail email)
    {
        lock (_gate)
        {
            if (_serverErrors > 0)
            {
                _serverErrors--;
                return false;
            }

            _outbox.Add(email);
            return true;
        }
    }
}
