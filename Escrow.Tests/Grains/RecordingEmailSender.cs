using System.Collections.Concurrent;
using Escrow.Grains.Email;

namespace Escrow.Tests.Grains;

public sealed class RecordingEmailSender : IEmailSender
{
    private int _failuresLeft;

    public ConcurrentQueue<EmailMessage> Sent { get; } = new();

    public void FailNext(int times) => Interlocked.Exchange(ref _failuresLeft, times);

    public Task<string> SendAsync(EmailMessage message, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Decrement(ref _failuresLeft) >= 0)
        {
            throw new EmailSendException(transient: true, "injected failure");
        }
        Sent.Enqueue(message);
        return Task.FromResult(Guid.NewGuid().ToString());
    }

    public int Count(string tag) => Sent.Count(m => m.Tag == tag);
}
