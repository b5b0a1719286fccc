using System.Collections.Concurrent;
using Escrow.Grains.Email;

namespace Escrow.Tests.Grains;

public sealed class RecordingEmailSender : IEmailSender
{
    private readonly Lock _lock = new();
    private TaskCompletionSource? _gate;
    private int _failuresLeft;

    public ConcurrentQueue<EmailMessage> Sent { get; } = new();

    public void FailNext(int times) => Interlocked.Exchange(ref _failuresLeft, times);

    private Func<EmailMessage, bool> _held = _ => true;

    /// <summary>From now on, sends (those <paramref name="which"/> picks, all by default) wait (Postmark slow to answer) until <see cref="Open"/>.</summary>
    public void Hold(Func<EmailMessage, bool>? which = null)
    {
        lock (_lock)
        {
            _gate ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _held = which ?? (_ => true);
        }
    }

    /// <summary>Lets the waiting sends and every later one through.</summary>
    public void Open()
    {
        TaskCompletionSource? gate;
        lock (_lock)
        {
            gate = _gate;
            _gate = null;
        }
        gate?.TrySetResult();
    }

    public async Task<string> SendAsync(EmailMessage message, CancellationToken cancellationToken = default)
    {
        Task? gate;
        lock (_lock)
        {
            gate = _held(message) ? _gate?.Task : null;
        }
        if (gate is not null)
        {
            await gate.WaitAsync(cancellationToken);
        }
        if (Interlocked.Decrement(ref _failuresLeft) >= 0)
        {
            throw new EmailSendException(transient: true, "injected failure");
        }
        Sent.Enqueue(message);
        return Guid.NewGuid().ToString();
    }

    /// <summary>Postmark's outbound search by metadata, over what was sent.</summary>
    public Task<string?> FindSentAsync(string metadataKey, string metadataValue, CancellationToken cancellationToken = default) =>
        Task.FromResult(Sent.Any(m => m.Metadata is { } meta && meta.TryGetValue(metadataKey, out var v) && v == metadataValue) ? "found" : (string?)null);

    public int Count(string tag) => Sent.Count(m => m.Tag == tag);

    /// <summary>The e-mails of one escrow with this tag (the escrow id is in each message's metadata).</summary>
    public int Count(Guid escrowId, string tag) =>
        Sent.Count(m => m.Tag == tag && m.Metadata is { } meta && meta.TryGetValue("escrow_id", out var id) && id == escrowId.ToString("D"));
}
