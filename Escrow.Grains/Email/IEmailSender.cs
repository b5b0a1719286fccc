namespace Escrow.Grains.Email;

public sealed record EmailMessage(
    string To,
    string Subject,
    string TextBody,
    string HtmlBody,
    string Tag,
    string? ReplyTo = null,
    IReadOnlyDictionary<string, string>? Metadata = null);

public interface IEmailSender
{
    /// <summary>Sends one email and returns the provider's message id. Throws <see cref="EmailSendException"/>.</summary>
    Task<string> SendAsync(EmailMessage message, CancellationToken cancellationToken = default);

    /// <summary>
    /// The provider's id of a message sent earlier with this metadata value (Postmark's outbound message search), or
    /// null when none was. Throws <see cref="EmailSendException"/> when the provider cannot say.
    /// </summary>
    Task<string?> FindSentAsync(string metadataKey, string metadataValue, CancellationToken cancellationToken = default);
}

public sealed class EmailSendException(bool transient, string message, Exception? inner = null) : Exception(message, inner)
{
    public bool Transient { get; } = transient;
}
